"""`stackci nightly`, `stackci runs`, `stackci dashboard`: run the night, list runs, publish."""

from __future__ import annotations

import json
import sys

from rich.console import Console
from rich.table import Table

from stackci.cli import arg, combination_arguments, command, db_argument
from stackci.dashboard.publish import publish
from stackci.durations import format_duration, parse_duration
from stackci.errors import UsageError
from stackci.model import OUTCOMES
from stackci.nightly.dask_executor import DaskCluster
from stackci.nightly.display import ProgressDisplay, print_summary
from stackci.nightly.plan import NightlyOptions
from stackci.nightly.progress import PlainProgress
from stackci.nightly.run import Nightly
from stackci.results.store import Store
from stackci.workspace import Workspace
from stackci.workloads.suite import TIERS


# The default plan's bound: the README's first line on a fresh clone within ten minutes on a
# 2-core machine (measured: docs/design.md, "Planning the night"). The coverage beyond it
# rotates through the following nights, carried over first.
MAX_COMBINATIONS = 3

# The exit status of a night whose gating jobs passed but did not all fit the budget: distinct
# from a failure (1) and a usage error (2), so a scheduler can tell "make the night fit".
GATING_DOES_NOT_FIT = 3


@command("nightly", "run the nightly: build, contracts, tests, workloads, publish, within a "
         "budget", [
             arg("--tier", default="smoke", choices=TIERS,
                 help="workload tier (default smoke; the full suite is 'nightly')"),
             arg("--workload", action="append", default=[], metavar="NAME",
                 help="only this workload; repeatable"),
             arg("--sku", action="append", default=[], metavar="SKU",
                 help="run workloads on this SKU (default: the suite's SKUs); repeatable"),
             *combination_arguments(default=None),
             arg("--budget", default="24h", help="wall time for the whole run (default 24h)"),
             arg("--workers", type=int, default=2, help="jobs run at once (default 2)"),
             arg("--max-combinations", type=int, default=MAX_COMBINATIONS, metavar="N",
                 help="the default plan's bound on combinations, master and release:latest "
                 f"included (default {MAX_COMBINATIONS}; 0: every one); the rest are carried "
                 "over to the next nights"),
             arg("--job-timeout", default="30m", help="limit per job (default 30m)"),
             arg("--resume", action="store_true",
                 help="continue the latest unfinished run, redoing only unfinished jobs"),
             db_argument(),
             arg("--no-tests", action="store_true", help="skip the module test suites"),
             arg("--no-analysis", action="store_true",
                 help="skip the workload analysis stage (bound, sweet spots, explore, advice)"),
             arg("--no-reuse", action="store_true",
                 help="run every job, even where a stored passing result has the same inputs"),
             arg("--out", default=None, help="dashboard directory (default .stackci/dashboard)"),
             arg("--executor", default="local", choices=("local", "dask"),
                 help="where jobs run: worker threads here (default), or a Dask cluster"),
             arg("--scheduler", default=None, metavar="tcp://HOST:PORT",
                 help="the Dask scheduler (with --executor dask; default: a LocalCluster of "
                      "--workers processes)"),
         ])
def nightly_command(args) -> int:
    if args.workers < 1:
        raise UsageError(f"--workers {args.workers}: expected 1 or more")
    if args.max_combinations < 0:
        raise UsageError(f"--max-combinations {args.max_combinations}: expected 0 (no bound) "
                         "or more")
    if args.scheduler and args.executor != "dask":
        raise UsageError(f"--scheduler {args.scheduler}: only with --executor dask")
    ws = Workspace.discover(args.home)
    store = Store.open(ws, args.db)
    if args.executor == "local":
        return _night(args, ws, store, None)
    with DaskCluster(args.scheduler, workers=args.workers) as cluster:
        return _night(args, ws, store, cluster.executor)


def _night(args, ws, store, executor) -> int:
    console = Console(stderr=True)
    # A live display only where a person watches; a log (CI, `| tee`) gets plain lines.
    display = ProgressDisplay(console) if console.is_terminal and sys.stdout.isatty() \
        else PlainProgress()
    nightly = Nightly(ws, store, dashboard_dir=args.out, reporter=display, executor=executor)
    try:
        if args.resume:
            result = nightly.resume()
        else:
            result = nightly.start(NightlyOptions(
                tier=args.tier, workloads=args.workload, skus=args.sku,
                combination=args.combination or "master", pins=args.pin,
                default_plan=args.combination is None and not args.pin,
                budget_s=parse_duration(args.budget, "--budget"), workers=args.workers,
                job_timeout_s=parse_duration(args.job_timeout, "--job-timeout"),
                no_tests=args.no_tests, no_analysis=args.no_analysis,
                max_combinations=args.max_combinations,
                no_reuse=args.no_reuse))
    finally:
        display.close()
    print_summary(Console(), result.run_id, result.summary)
    if result.findings:
        print(f"stackci: run {result.run_id}: {len(result.findings)} job(s) of coverage "
              "combinations did not pass (findings for the compatibility matrix, not gating): "
              + ", ".join(result.findings), file=sys.stderr)
    if not result.ok:
        bad = len(result.summary["bad"]) - len(result.findings)
        print(f"stackci: run {result.run_id}: {bad} job(s) of master or release:latest "
              "failed, errored or timed out", file=sys.stderr)
        return 1
    if result.gating_left_out:
        print(f"stackci: run {result.run_id}: P0: {len(result.gating_left_out)} gating "
              "job(s) did not fit the budget (exit 3): "
              + ", ".join(result.gating_left_out[:10]), file=sys.stderr)
        return GATING_DOES_NOT_FIT
    return 0


@command("runs", "list the stored runs with their job counts", [
    db_argument(),
    arg("--json", action="store_true", help="print JSON"),
    arg("--limit", type=int, default=20, help="newest N runs (default 20)"),
])
def runs_command(args) -> int:
    ws = Workspace.discover(args.home)
    runs = Store.open(ws, args.db).runs(limit=args.limit)
    if args.json:
        print(json.dumps([run.to_dict() for run in runs], default=str, indent=2))
        return 0
    table = Table(title="runs (jobs: passed/failed/error/timeout/not run)")
    for column in ("run", "started", "status", "tier", "used", "budget"):
        table.add_column(column)
    table.add_column("jobs", justify="right")
    for run in runs:
        table.add_row(str(run.id), f"{run.started_at:%m-%d %H:%M}", run.status, run.tier,
                      format_duration(run.summary.get("used_s")),
                      format_duration(run.budget_s),
                      "/".join(str(run.counts.get(s, 0)) for s in OUTCOMES))
    Console().print(table)
    return 0


@command("dashboard", "publish the static dashboard from the results database", [
    db_argument(),
    arg("--out", default=None, help="output directory (default .stackci/dashboard)"),
])
def dashboard_command(args) -> int:
    ws = Workspace.discover(args.home)
    index = publish(Store.open(ws, args.db), args.out or ws.dashboard_dir)
    print(index)
    return 0
