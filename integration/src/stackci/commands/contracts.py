"""`stackci contracts verify`, `stackci contracts matrix`, `stackci can-i-deploy`: verified
compatibility across versions and the evidence for a whole combination."""

from __future__ import annotations

import argparse
import json

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from stackci import combination, compat, matrix
from stackci.cli import arg, combination_arguments, command
from stackci.commands.nightly import db_argument, open_store
from stackci.errors import UsageError
from stackci.verify import Pair, Verifier, window_pairs
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
    store = open_store(ws, args.db)
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
    store = open_store(ws, args.db)
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
    combo = combination.resolve(ws, args.combination, args.pin)
    store = open_store(ws, args.db)
    catalog = compat.Catalog(ws)
    verifier = None if args.no_verify else Verifier(ws, store, catalog)
    measured = store.measured_vectors()
    evidence = []
    for consumer_module, consumer_mv in combo.modules.items():
        consumer = catalog.candidate(consumer_mv)
        for interface in consumer.contract.requires:
            provider_module = catalog.providers.get(interface)
            if provider_module not in combo.modules:
                raise UsageError(f"{consumer.contract.path}: requires.{interface}: no module of "
                                 f"the combination provides it")
            provider = catalog.candidate(combo.modules[provider_module])
            edge = compat.Edge(consumer_module, interface, provider_module)
            evidence.append(_edge_evidence(catalog, store, verifier, measured,
                                           Pair(edge, consumer, provider)))
    deploy = all(e["declared"] and e["verified"] == "passed" for e in evidence)
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


def _edge_evidence(catalog, store, verifier, measured, pair: Pair) -> dict:
    interface = pair.edge.interface
    declared = compat.declared_ok(pair.consumer.contract, pair.provider.contract, interface)
    verdict = store.verdict_for(interface, pair.consumer.mv.tree_hash, pair.provider.mv.tree_hash)
    if verdict is None and verifier is not None:
        verdict = verifier.verify(pair)
    verified = verdict["status"] if verdict else "not verified"
    row = {"consumer": pair.edge.consumer, "provider": pair.edge.provider,
           "consumer_tree": pair.consumer.mv.tree_hash,
           "provider_tree": pair.provider.mv.tree_hash}
    if not declared:
        why = compat.explain_chain(catalog, pair.consumer.contract, pair.provider.contract,
                                   interface)
    else:
        why = verdict["message"] if verdict else "no stored verdict (run contracts verify)"
    return {"edge": pair.edge.name, "interface": interface,
            "versions": f"{pair.consumer.label} x {pair.provider.label}",
            "declared": declared, "verified": verified,
            "measured": matrix.is_measured(row, measured), "evidence": why}
