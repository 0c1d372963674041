"""`stackci contracts check`, `stackci contracts verify`, `stackci contracts matrix`, `stackci can-i-deploy`: verified
compatibility across versions and the evidence for a whole combination."""

from __future__ import annotations

import argparse
import json

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from stackci.cli import arg, combination_arguments, command, db_argument
from stackci.compat import catalog as compat
from stackci.compat.catalog import chains
from stackci.compat.contracts import check_declared, load_contracts
from stackci.compat.deploy import deploy_evidence
from stackci.compat.verify import Pair, Verifier, window_pairs
from stackci.errors import UsageError
from stackci.results import matrix
from stackci.results.store import Store
from stackci.sources.build import export_sources
from stackci.sources.modules import is_git_checkout
from stackci.sources.resolve import resolve
from stackci.workspace import Workspace

JSON = arg("--json", action="store_true", help="print a JSON document on stdout")
STYLE = {"passed": "green", "failed": "red", "error": "magenta", "untested": "yellow"}


def styled(text: str, status: str) -> str:
    """`text` as rich markup in the colour of `status` (escaped: messages hold brackets)."""
    style = STYLE.get(status)
    return f"[{style}]{escape(text)}[/]" if style else escape(text)


def window_argument():
    return arg("--window", type=int, default=compat.DEFAULT_WINDOW, metavar="N",
               help="support window: the last N releases of each module, plus master (default 3)")


@command("contracts verify", "run each consumer's contract tests against every provider "
         "version in the support window and store the verified verdicts",
         [window_argument(), db_argument(), JSON])
def verify_command(args: argparse.Namespace) -> int:
    ws = Workspace.discover(args.home)
    store = Store.open(ws, args.db)
    catalog = compat.Catalog(ws, args.window)
    pairs = window_pairs(catalog)
    verifier = Verifier(ws, store, catalog)
    console = Console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True,
                  disable=args.json) as progress:
        task = progress.add_task("verify", total=len(pairs))

        def report(pair: Pair, verdict: dict) -> None:
            progress.advance(task)
            cached = " (cached)" if verdict.get("cached_from") else ""
            if not args.json:
                console.print(f"{styled(format(verdict['status'], '>8'), verdict['status'])} "
                              f"{escape(pair.name)}{cached}")

        verdicts = verifier.run(pairs, report)
    result = matrix.build_matrix(verdicts, store.measured_vectors())
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print_matrix(Console(), result)
    return 1 if any(v["status"] == "error" for v in verdicts) else 0


@command("contracts matrix", "the compatibility matrix of the newest `contracts verify`: "
         "declared, verified and measured per pair of versions, disagreements first",
         [db_argument(), arg("--batch", type=int, default=None, help="an older verify batch"),
          JSON])
def matrix_command(args: argparse.Namespace) -> int:
    ws = Workspace.discover(args.home)
    store = Store.open(ws, args.db)
    verdicts = store.verdicts(args.batch)
    if not verdicts:
        raise UsageError("no verified verdicts stored" + (f" in batch {args.batch}"
                         if args.batch else ": run `stackci contracts verify` first"))
    result = matrix.build_matrix(verdicts, store.measured_vectors())
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print_matrix(Console(), result)
    return 0


def print_matrix(console: Console, result: dict) -> None:
    if result["disagreements"]:
        table = Table(title="[bold red]declared and verified disagree[/]")
        for column in ("edge", "consumer", "provider", "finding", "evidence"):
            table.add_column(column)
        for cell in result["disagreements"]:
            table.add_row(f"{cell['consumer']} -> {cell['provider']} ({cell['interface']})",
                          cell["consumer_version"], cell["provider_version"],
                          cell["disagreement"], cell["message"])
        console.print(table)
    for edge in result["edges"]:
        table = Table(title=f"{edge['consumer']} -> {edge['provider']} ({edge['interface']}): "
                            "declared / verified / measured")
        table.add_column(f"{edge['consumer']} \\ {edge['provider']}")
        for provider in edge["providers"]:
            table.add_column(provider)
        cells = {(c["consumer_version"], c["provider_version"]): c for c in edge["cells"]}
        for consumer in edge["consumers"]:
            table.add_row(consumer, *(_cell(cells.get((consumer, p)))
                                      for p in edge["providers"]))
        console.print(table)
    console.print(f"verify batch {result['batch']}: {len(result['disagreements'])} "
                  "disagreement(s) between declared and verified")


def _cell(cell: dict | None) -> str:
    if cell is None:
        return ""
    measured = "measured" if cell["measured"] else "-"
    verified = f"[bold red]{escape(cell['verified'])}[/]" if cell["disagreement"] else \
        styled(cell["verified"], cell["verified"])
    return f"{matrix.declared_text(cell['declared'])} / {verified} / {measured}"


@command("can-i-deploy", "can this combination be deployed? yes (exit 0) or no (exit 1), with "
         "the evidence for every contract edge", [
             *combination_arguments(), db_argument(), JSON,
             arg("--no-verify", action="store_true",
                 help="use stored verdicts only; do not run missing contract tests")])
def can_i_deploy_command(args: argparse.Namespace) -> int:
    ws = Workspace.discover(args.home)
    combo = resolve(ws, args.combination, args.pin)
    deploy, evidence = deploy_evidence(ws, Store.open(ws, args.db), combo,
                                       verify=not args.no_verify)
    if args.json:
        print(json.dumps({"combination": combo.to_dict(), "deploy": deploy,
                          "edges": evidence}, indent=2, default=str))
    else:
        console = Console()
        table = Table(title=f"can-i-deploy {combo.name} ({combo.key})")
        for column in ("edge", "versions", "declared", "verified", "measured", "evidence"):
            table.add_column(column)
        for e in evidence:
            table.add_row(escape(e["edge"]), escape(e["versions"]),
                          matrix.declared_text(e["declared"]), styled(e["verified"], e["verified"]),
                          "yes" if e["measured"] else "-", escape(e["evidence"]))
        console.print(table)
        console.print("[bold green]yes[/]: every edge is declared and verified compatible"
                      if deploy else "[bold red]no[/]: see the edges above")
    return 0 if deploy else 1


@command("contracts check", "check that the declared interface ranges of a combination agree "
         "(exit 1 when they do not)", [*combination_arguments(), JSON])
def contracts_check_command(args: argparse.Namespace) -> int:
    ws = Workspace.discover(args.home)
    combo = resolve(ws, args.combination, args.pin)
    sources = export_sources(ws, combo)
    versions = {m: mv.version for m, mv in combo.modules.items()}
    loaded = load_contracts(sources, versions, {m: mv.commit for m, mv in combo.modules.items()})
    verdict = check_declared(loaded)
    if not verdict.ok and is_git_checkout(ws):
        verdict.problems = chains(ws, loaded, verdict.edges)
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
