"""`stackci build`, `stackci contracts check`, `stackci versions`: assembling combinations."""

from __future__ import annotations

import argparse
import json
import sys

from stackci import build, combination, contracts
from stackci.cli import arg, combination_arguments, command
from stackci.workspace import MODULES, Workspace

JSON = arg("--json", action="store_true", help="print a JSON document on stdout")


def _resolve(args: argparse.Namespace) -> tuple[Workspace, combination.Combination]:
    ws = Workspace.discover(args.home)
    return ws, combination.resolve(ws, args.combination, args.pin)


def _stderr_progress(message: str) -> None:
    print(f"stackci: {message}", file=sys.stderr)


@command("build", "assemble the environment of a combination and print its path",
         [*combination_arguments(), JSON])
def build_command(args: argparse.Namespace) -> int:
    ws, combo = _resolve(args)
    env = build.ensure_environment(ws, combo, progress=_stderr_progress)
    if args.json:
        print(json.dumps({"path": str(env.path), "python": str(env.python), "lock": env.lock},
                         indent=2))
    else:
        print(env.path)
    return 0


@command("contracts check", "check that the declared interface ranges of a combination agree "
         "(exit 1 when they do not)", [*combination_arguments(), JSON])
def contracts_check_command(args: argparse.Namespace) -> int:
    ws, combo = _resolve(args)
    sources = build.export_sources(ws, combo)
    versions = {m: mv.version for m, mv in combo.modules.items()}
    verdict = contracts.check_declared(contracts.load_contracts(sources, versions))
    if args.json:
        print(json.dumps({"combination": combo.to_dict(), **verdict.to_dict()}, indent=2))
    else:
        print(f"combination {combo.name} ({combo.key})")
        for edge in verdict.edges:
            mark = "ok  " if edge["satisfied"] else "FAIL"
            print(f"  {mark} {edge['consumer']:>8} requires {edge['interface']:<13} "
                  f"{edge['required']:<10} {edge['provider']:>8} provides {edge['provided']}")
        for problem in verdict.problems:
            print(f"problem: {problem}")
        print("declared contracts agree" if verdict.ok
              else f"{len(verdict.problems)} declared contract(s) broken")
    return 0 if verdict.ok else 1


@command("versions", "list each module's master version and releases (from git history)", [JSON])
def versions_command(args: argparse.Namespace) -> int:
    ws = Workspace.discover(args.home)
    table = {}
    for module in MODULES:
        master = combination.module_at_master(ws, module)
        table[module] = {"master": master.to_dict(),
                         "releases": [mv.to_dict() for mv in combination.releases(ws, module)]}
    if args.json:
        print(json.dumps(table, indent=2))
        return 0
    for module, row in table.items():
        master = row["master"]
        print(f"{module}: master {master['version']} ({master['commit'][:12]})")
        for release in row["releases"]:
            print(f"  {release['version']:<12} {release['commit'][:12]}  "
                  f"tree {release['tree_hash'][:12]}")
        if not row["releases"]:
            print("  (no releases yet)")
    return 0
