"""`stackci release MODULE VERSION`: cut a module release (version + CHANGELOG, one commit)."""

from __future__ import annotations

import argparse

from stackci.cli import arg, command
from stackci.sources.cut_release import cut_release
from stackci.workspace import MODULES, Workspace


@command("release", "cut a module release: set its version, move the CHANGELOG's Unreleased "
         "lines under it, and (with --commit) commit and tag <module>/v<version>",
         [arg("module", choices=MODULES), arg("version", help="MAJOR.MINOR.PATCH"),
          arg("--commit", action="store_true", help="commit the release and tag it")])
def release_command(args: argparse.Namespace) -> int:
    ws = Workspace.discover(args.home)
    done = cut_release(ws, args.module, args.version, commit=args.commit)
    where = f" at {done.commit[:12]}" if done.commit else " (not committed: pass --commit)"
    print(f"{done.module} {done.previous} -> {done.version}{where}")
    for note in done.notes:
        print(f"  {note}")
    return 0
