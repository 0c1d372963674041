"""`stackci store check` and `stackci store recover`: the results database's health, and the
run journals replayed into it (docs/design.md, "Faults")."""

from __future__ import annotations

from pathlib import Path

from stackci.cli import arg, command, db_argument
from stackci.errors import StackciError, UsageError
from stackci.results.check import check_store
from stackci.results.journal import JOURNAL_NAME, read_journal
from stackci.results.store import Store
from stackci.workspace import Workspace


@command("store check", "check the results database (SQLite integrity_check, or every table "
         "read through) and name the damaged tables", [db_argument()])
def check_command(args) -> int:
    ws = Workspace.discover(args.home)
    url = args.db or ws.db_url
    health = check_store(url)
    if health.ok:
        print(f"results database {url}: ok ({len(health.tables)} tables checked)")
        return 0
    if not health.damaged:
        raise StackciError(f"results database {url} is damaged: {health.problems[0]}")
    first = next(iter(health.damaged.values()))
    raise StackciError(f"results database {url} is damaged: tables "
                       f"{', '.join(sorted(health.damaged))} ({first}); `stackci store "
                       "recover --db URL` replays the run journals into a fresh database")


@command("store recover", "replay the run journals (STACKCI_HOME/runs/*/journal.jsonl) into "
         "the results database: what a run recorded while the database failed", [
             db_argument(),
             arg("--run", type=int, action="append", default=[], metavar="ID",
                 help="only this run's journal; repeatable"),
         ])
def recover_command(args) -> int:
    ws = Workspace.discover(args.home)
    journals = sorted((ws.home / "runs").glob(f"*/{JOURNAL_NAME}"),
                      key=lambda path: _run_number(path))
    if args.run:
        journals = [path for path in journals if _run_number(path) in args.run]
    if not journals:
        raise UsageError(f"no run journals under {ws.home / 'runs'}"
                         + (f" for run(s) {', '.join(map(str, args.run))}" if args.run else ""))
    store = Store.open(ws, args.db)
    for path in journals:
        replayed, kept = store.replay(read_journal(path))
        print(f"run {_run_number(path)}: {replayed} result(s) replayed, {kept} already stored "
              f"({path})")
    return 0


def _run_number(path: Path) -> int:
    name = path.parent.name
    return int(name) if name.isdigit() else -1
