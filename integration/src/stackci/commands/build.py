"""`stackci build`, `stackci contracts check`, `stackci versions`: assembling combinations."""

from __future__ import annotations

import argparse
import json
import sys

from stackci import build, combination, contracts
from stackci.cli import arg, combination_arguments, command
from stackci.errors import UsageError
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
    loaded = contracts.load_contracts(sources, versions)
    verdict = contracts.check_declared(loaded)
    if not verdict.ok and combination.is_git_checkout(ws):
        verdict.problems = _chains(ws, loaded, verdict.edges)
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


def _release_row(ws: Workspace, mv: combination.ModuleVersion) -> dict:
    """A release with its date and the interfaces it provides and requires."""
    from stackci.compat import contract_of

    try:
        declared = contract_of(ws, mv).to_dict()
        provides = ", ".join(f"{i} {v}" for i, v in declared["provides"].items())
        requires = ", ".join(f"{i} {v}" for i, v in declared["requires"].items())
    except UsageError as exc:
        provides = requires = f"(unreadable contract: {exc})"
    date = ws.git("log", "-1", "--format=%ad", "--date=short", mv.commit).strip()
    return {**mv.to_dict(), "date": date, "provides": provides, "requires": requires}


def _chains(ws: Workspace, loaded: dict, edges: list[dict]) -> list[str]:
    """Each broken edge explained with the release history: which releases would do."""
    from stackci.compat import Catalog, explain_chain

    catalog = Catalog(ws)
    return [explain_chain(catalog, loaded[e["consumer"]], loaded[e["provider"]], e["interface"])
            for e in edges if not e["satisfied"]]


@command("versions", "list each module's master version and releases (from git history)", [JSON])
def versions_command(args: argparse.Namespace) -> int:
    ws = Workspace.discover(args.home)
    table = {}
    for module in MODULES:
        master = combination.module_at_master(ws, module)
        table[module] = {"master": master.to_dict(),
                         "releases": [_release_row(ws, mv)
                                      for mv in combination.releases(ws, module)]}
    note = combination.missing_history(ws)
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
