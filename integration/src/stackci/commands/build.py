"""`stackci build`, `stackci versions`: assembling combinations, and the releases found."""

from __future__ import annotations

import argparse
import json
import sys

from stackci.cli import arg, combination_arguments, command
from stackci.compat.catalog import release_row
from stackci.sources.modules import module_at_master
from stackci.sources.releases import missing_history, releases
from stackci.sources.resolve import resolve
from stackci.stack.port import StackPort
from stackci.workspace import MODULES, Workspace

JSON = arg("--json", action="store_true", help="print a JSON document on stdout")


def _stderr_progress(message: str) -> None:
    print(f"stackci: {message}", file=sys.stderr)


@command("build", "assemble the environment of a combination and print its path",
         [*combination_arguments(), JSON])
def build_command(args: argparse.Namespace) -> int:
    ws = Workspace.discover(args.home)
    combo = resolve(ws, args.combination, args.pin)
    env = StackPort().environment(ws, combo, progress=_stderr_progress)
    if args.json:
        print(json.dumps({"path": str(env.path), "python": str(env.python), "lock": env.lock},
                         indent=2))
    else:
        print(env.path)
    return 0


@command("versions", "list each module's master version and releases (from git history)", [JSON])
def versions_command(args: argparse.Namespace) -> int:
    ws = Workspace.discover(args.home)
    table = {}
    for module in MODULES:
        master = module_at_master(ws, module)
        table[module] = {"master": master.to_dict(),
                         "releases": [release_row(ws, mv) for mv in releases(ws, module)]}
    note = missing_history(ws)
    if args.json:
        print(json.dumps({"modules": table, "history_missing": note}, indent=2))
        return 0
    if note:
        print(f"stackci: note: {note}", file=sys.stderr)
    for module, row in table.items():
        master = row["master"]
        print(f"{module}: master {master['version']} ({master['commit'][:12]})")
        for release in row["releases"]:
            print(f"  {release['version']:<12} {release['commit'][:12]}  {release['date']}  "
                  f"provides {release['provides'] or '-'}  requires {release['requires'] or '-'}")
        if not row["releases"]:
            print("  (no releases yet)")
    return 0
