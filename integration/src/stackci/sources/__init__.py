"""Where a combination's code comes from: module versions found in git, releases, pins,
and the environment built from them (docs/design.md, "Harness internals")."""
