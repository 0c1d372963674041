"""`stackci regressions [ack|false-positive|fixed ID]`, `stackci compare RUN_A RUN_B`,
`stackci bisect --series KEY --good RUN --bad RUN`: the stored regressions, listed and moved by
a person; two runs side by side; one culprit search by hand."""

from __future__ import annotations

import json
import sys
import tempfile
from datetime import datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from stackci.cli import arg, command, db_argument
from stackci.errors import UsageError
from stackci.model import JobContext
from stackci.nightly import regressions as stored
from stackci.nightly.resources import Resources
from stackci.nightly.stages.probes import JobProbe, WorkspaceHistory, job_of
from stackci.nightly.stages.regressions import owner_of
from stackci.regressions.regression import parse_state, transition
from stackci.regressions.report import culprit_text, regression_json, size_text
from stackci.regressions.search import run as run_search
from stackci.regressions.series import SeriesKey
from stackci.regressions.stored import event_rows, regression_row
from stackci.results.regressions import HistoryReader
from stackci.results.store import Store
from stackci.stack.port import StackPort
from stackci.workspace import Workspace

MOVES = {"ack": "acknowledged", "false-positive": "false_positive", "fixed": "fixed"}


@command("regressions", "list the stored regressions (open ones first), or move one: "
         "`regressions ack|false-positive|fixed ID`", [
             arg("move", nargs="?", choices=tuple(MOVES), metavar="ack|false-positive|fixed",
                 help="change a regression's state"),
             arg("id", nargs="?", help="the regression's id (with a move)"),
             arg("--state", default=None, help="only this state (new, confirmed, "
                 "acknowledged, false-positive, fixed)"),
             arg("--team", default=None, help="only regressions owned by this team"),
             arg("--note", default="", help="why (stored with the state change)"),
             arg("--json", action="store_true", help="print JSON"),
             db_argument(),
         ])
def regressions_command(args) -> int:
    ws = Workspace.discover(args.home)
    store = Store.open(ws, args.db)
    if args.move is not None:
        if not args.id:
            raise UsageError(f"regressions {args.move}: expected a regression ID")
        return move(ws, store, args.move, args.id, args.note)
    if args.id:
        raise UsageError(f"regressions {args.id!r}: expected ack, false-positive or fixed "
                         "before the ID")
    state = parse_state(args.state).value if args.state else None
    found = stored.load(store, state=state, team=args.team)
    found.sort(key=lambda r: (not r.open, -r.found_at.timestamp(), r.id))
    owner = owner_of(ws)
    if args.json:
        print(json.dumps([regression_json(r, owner) for r in found], indent=2, default=str))
        return 0
    if not found:
        print("no regressions" + (f" in state {state}" if state else "") +
              (f" of team {args.team}" if args.team else ""))
        return 0
    table = Table(title=f"{len(found)} regression(s)")
    for column in ("id", "state", "series", "size", "culprit", "team"):
        table.add_column(column)
    for r in found:
        table.add_row(r.id, r.state.value, str(r.series), size_text(r), culprit_text(r),
                      ", ".join(t.name for t in stored.owners(r, owner)))
    Console(width=200).print(table)
    return 0


def move(ws, store: Store, word: str, regression_id: str, note: str) -> int:
    row = store.regression_row(regression_id)
    [regression] = stored.regressions_from_rows([row], store.bisection_rows([regression_id]))
    moved = transition(regression, MOVES[word], datetime.now(), by="cli", note=note)
    store.record_regression_changes(None, {
        "regressions": [regression_row(moved, owner_of(ws), row.get("search_of"))],
        "events": event_rows(moved, len(moved.history) - 1)})
    print(f"{moved.id}: {regression.state.value} -> {moved.state.value}")
    return 0


def _run_id(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"{what} {text!r}: expected a run id (a number; see `stackci runs`)") \
            from None


@command("compare", "two stored runs side by side: every series and the per-op diffs", [
    arg("run_a", metavar="RUN_A"), arg("run_b", metavar="RUN_B"),
    arg("--all", action="store_true", help="also the series that did not change"),
    arg("--json", action="store_true", help="print JSON"),
    db_argument(),
])
def compare_command(args) -> int:
    ws = Workspace.discover(args.home)
    store = Store.open(ws, args.db)
    found = stored.compare_stored(store, _run_id(args.run_a, "RUN_A"),
                                  _run_id(args.run_b, "RUN_B"))
    if args.json:
        print(json.dumps(found, indent=2, default=str))
        return 0
    rows = [r for r in found["rows"] if args.all or r["verdict"] != "same"]
    table = Table(title=f"run {found['run_a']} against run {found['run_b']}: {len(rows)} of "
                  f"{len(found['rows'])} series" + ("" if args.all else " differ"))
    for column in ("series", "A", "B", "change", "verdict"):
        table.add_column(column)
    for r in rows:
        size = r["size"] or {}
        change = f"{size['relative']:+.1%}" if size.get("relative") is not None else ""
        table.add_row(r["series"], _cell(r["a"], r["a_status"]), _cell(r["b"], r["b_status"]),
                      change, r["verdict"])
    console = Console(width=200)
    console.print(table)
    for diff in found["op_diffs"]:
        console.print(f"{diff['job']}: {diff['total_after'] - diff['total_before']:+g} cycles; "
                      f"{diff['hint']}")
        for change in sorted(diff["changes"], key=lambda c: -abs(c["delta_cycles"]))[:10]:
            console.print(f"  {change['name']} ({change['op_type']}) {change['status']}: "
                          f"{change['delta_cycles']:+g} cycles")
    return 0


def _cell(value, status) -> str:
    if value is None:
        return status or "-"
    return f"{value:g}"


@command("bisect", "find the module and commit that moved one series between two runs "
         "(builds each probe)", [
             arg("--series", required=True, metavar="TRACK/WORKLOAD/SKU/PRECISION/METRIC",
                 help="as `stackci regressions` and `compare` print it ('-' for empty)"),
             arg("--good", required=True, metavar="RUN", help="a run that measured it good"),
             arg("--bad", required=True, metavar="RUN", help="a later run that measured it bad"),
             arg("--max-probes", type=int, default=None, help="stop after N probes"),
             arg("--timeout", type=float, default=1800.0, help="seconds per probe's job"),
             arg("--json", action="store_true", help="print the search's state as JSON"),
             db_argument(),
         ])
def bisect_command(args) -> int:
    ws = Workspace.discover(args.home)
    store = Store.open(ws, args.db)
    key = SeriesKey.parse(args.series)
    if job_of(key) is None:
        raise UsageError(f"--series {key}: no job can measure {key.metric} again (workload "
                         "figures and outcomes, conformance and opslib counts can)")
    regression, search = stored.hand_search(store, key, _run_id(args.good, "--good"),
                                            _run_id(args.bad, "--bad"))
    stage, name = job_of(key)
    params = store.plan_params(regression.first_bad.run_id, stage, name)
    if params is None:
        raise UsageError(f"run {regression.first_bad.run_id}'s stored plan has no {stage} job "
                         f"{name} to run again")
    resources = Resources(ws, StackPort(), lambda: None, results=HistoryReader(store, None))
    with tempfile.TemporaryDirectory(prefix="stackci-bisect-") as workdir:
        ctx = JobContext(timeout_s=args.timeout, workdir=Path(workdir), resources=resources)
        search = run_search(search, JobProbe(ctx, key, params), WorkspaceHistory(ws),
                            max_probes=args.max_probes,
                            progress=lambda message: print(message, file=sys.stderr))
    if args.json:
        print(json.dumps(search.to_dict(), indent=2, default=str))
        return 0
    console = Console(width=200)
    table = Table(title=f"{key}: {search.describe()}")
    for column in ("probe", "verdict", "measured", "why"):
        table.add_column(column)
    for e in list(search.modules.evidence) + [e for b in search.bisections for e in b.evidence]:
        table.add_row(e.label, e.verdict, ", ".join(str(s) for s in e.samples[:4]) or "-",
                      e.why)
    console.print(table)
    console.print(("done: " if search.done else "stopped (--max-probes): ") + search.describe())
    return 0
