"""`stackci workloads list`, `stackci workloads prepare`: the model suite."""

from __future__ import annotations

import argparse
import json

from stackci.cli import arg, command
from stackci.errors import UsageError
from stackci.workloads.prepare import prepare
from stackci.workloads.suite import TIERS, load_suite
from stackci.workspace import Workspace

_SUITE = arg("--suite", default=None, metavar="SUITE.yaml",
             help="suite manifest (default: workloads/suite.yaml of the repository)")


@command("workloads list", "list the workloads of the suite",
         [arg("--tier", default=None, choices=TIERS), _SUITE,
          arg("--json", action="store_true")])
def workloads_list_command(args: argparse.Namespace) -> int:
    chosen = load_suite(args.suite).select(args.tier)
    if args.json:
        print(json.dumps([w.to_dict() for w in chosen], indent=2))
        return 0
    from rich.console import Console
    from rich.table import Column, Table

    table = Table(Column("name", no_wrap=True), "source", "tiers", "skus", "precision", "atol",
                  "rtol")
    for w in chosen:
        table.add_row(w.name, w.source, ",".join(w.tiers), ",".join(w.skus), w.precision,
                      f"{w.atol:g}", f"{w.rtol:g}")
    Console().print(table)
    return 0


@command("workloads prepare",
         "randomize weights, generate inputs and reference outputs of workloads (cached)",
         [arg("names", nargs="*", metavar="NAME", help="workloads (default: all of the tier)"),
          arg("--tier", default="nightly", choices=TIERS), _SUITE])
def workloads_prepare_command(args: argparse.Namespace) -> int:
    from rich.progress import Progress

    ws = Workspace.discover(args.home)
    suite = load_suite(args.suite)
    chosen = suite.select(None if args.names else args.tier, args.names or None)
    if not chosen:
        raise UsageError(f"no workloads in tier {args.tier} of {suite.path}")
    with Progress(transient=False) as progress:
        task = progress.add_task("preparing", total=len(chosen))
        for workload in chosen:
            note = lambda message: progress.update(task, description=message)  # noqa: E731
            prepared = prepare(ws, workload, progress=note)
            progress.advance(task)
            progress.console.print(f"{workload.name}: {prepared.model_path}")
        progress.update(task, description="prepared")
    return 0
