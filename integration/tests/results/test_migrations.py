"""The store's schema is Alembic's: one head, the head equal to the tables in schema.py, a
database of the harness before Alembic upgraded in place, concurrent first opens safe."""

import multiprocessing
import sqlite3
import time
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from stackci.errors import StackciError
from stackci.results import migrate
from stackci.results.schema import Base
from stackci.results.store import Store

LEGACY_DUMP = Path(__file__).parent / "data" / "results-v1.sql"


def schema_drift(engine) -> list:
    with engine.connect() as connection:
        return compare_metadata(MigrationContext.configure(connection), Base.metadata)


def test_the_revisions_have_exactly_one_head():
    # Two helpers chaining onto the same parent make two heads: re-point the newer one.
    assert len(migrate.heads()) == 1, migrate.heads()


def test_upgrading_an_empty_database_to_head_gives_exactly_the_tables_of_schema_py(store_url):
    # A table or column added to schema.py without a revision (or the reverse) fails here.
    store = Store(store_url)
    assert schema_drift(store.engine) == []
    with store.engine.connect() as connection:
        assert migrate.current(connection) == (migrate.head(),)
    store.close()


def legacy_database(path: Path) -> str:
    """The results database a harness before Alembic wrote (tests/results/data: its dump)."""
    connection = sqlite3.connect(path)
    connection.executescript(LEGACY_DUMP.read_text())
    connection.close()
    return f"sqlite:///{path}"


def test_a_database_from_before_alembic_is_upgraded_in_place_with_its_runs(tmp_path):
    url = legacy_database(tmp_path / "results.db")
    store = Store(url)
    assert [(r["id"], r["status"], r["summary"]) for r in store.runs()] == [
        (2, "completed", {"used_s": 5.0}), (1, "completed", {"used_s": 4.0})]
    assert [j["status"] for j in store.jobs(1)] == ["passed", "passed"]
    assert [m["value"] for m in store.metric_series("latency_us")] == [100.0, 101.0]
    job = next(j for j in store.jobs(2) if j["stage"] == "workloads")
    assert store.op_profile(job["id"])[0]["cycles"] == 11.0
    assert schema_drift(store.engine) == []
    with store.engine.connect() as connection:
        assert migrate.current(connection) == (migrate.head(),)
        # An older harness checks for exactly 1 here and so refuses the upgraded database.
        assert connection.execute(text("SELECT version FROM schema_version")).all() == [(2,)]
    # The upgraded store takes new runs after the old ones.
    assert store.start_run(tier="smoke", budget_s=10, plan={}) == 3
    store.close()
    assert len(Store(url).runs()) == 3  # and a second open finds it at head as it is


def test_a_database_at_a_revision_this_harness_does_not_know_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    Store(url).close()
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'from_the_future'"))
    engine.dispose()
    with pytest.raises(StackciError, match="revision from_the_future, unknown to this harness"):
        Store(url)


def test_a_database_of_something_else_is_refused(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'other.db'}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE invoices (id INTEGER PRIMARY KEY)"))
    engine.dispose()
    with pytest.raises(StackciError, match="not a stackci results database"):
        Store(f"sqlite:///{tmp_path / 'other.db'}")


def open_and_record(url: str, start, errors) -> None:
    try:
        start.wait(timeout=60)
        store = Store(url)
        store.start_run(tier="smoke", budget_s=10, plan={})
        store.close()
    except Exception as exc:  # reported to the parent, which asserts there were none
        errors.put(f"{type(exc).__name__}: {exc}")


def open_at_once(url: str, processes: int = 4, hold_s: float = 0.0) -> list[str]:
    """`processes` processes open the store at `url` at the same moment and record a run;
    with `hold_s`, while this process holds the SQLite file's write lock until `hold_s`
    after their start (as one of them switching the file to WAL does)."""
    context = multiprocessing.get_context("fork")
    start, errors = context.Barrier(processes + 1), context.Queue()
    children = [context.Process(target=open_and_record, args=(url, start, errors))
                for _ in range(processes)]
    for child in children:
        child.start()
    holder = None
    if hold_s:
        holder = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
    start.wait(timeout=60)
    if holder is not None:
        time.sleep(hold_s)
        holder.execute("COMMIT")
        holder.close()
    for child in children:
        child.join(timeout=120)
    found = []
    while not errors.empty():
        found.append(errors.get())
    return found + [f"exit {c.exitcode}" for c in children if c.exitcode != 0]


def test_processes_opening_a_fresh_database_at_once_all_succeed(store_url):
    # Before Alembic one of them failed with "table schema_version already exists".
    assert open_at_once(store_url) == []
    store = Store(store_url)
    assert len(store.runs()) == 4
    assert schema_drift(store.engine) == []
    store.close()


def test_processes_upgrading_a_legacy_database_at_once_all_succeed(tmp_path):
    # The race it once lost: a process switching the legacy (rollback-journal) file to WAL
    # holds its write lock, and SQLite fails the others' switch at once ("database is
    # locked") instead of waiting. Holding the lock while they start makes that every time.
    url = legacy_database(tmp_path / "results.db")
    assert open_at_once(url, hold_s=1.0) == []
    assert len(Store(url).runs()) == 2 + 4


def test_a_legacy_database_that_create_all_gave_the_regressions_tables_upgrades(tmp_path):
    # For a while before Alembic the harness made new tables with create_all (revision 0003).
    url = legacy_database(tmp_path / "results.db")
    engine = create_engine(url)
    tables = [Base.metadata.tables[name] for name in
              ("regressions", "regression_events", "bisections")]
    Base.metadata.create_all(engine, tables=tables)
    engine.dispose()
    store = Store(url)
    assert len(store.runs()) == 2
    assert schema_drift(store.engine) == []
    store.close()
