"""`stackci store check` (results/check.py): a whole store is ok, a damaged page names its
table, a file that is no database says so; all in one line, never a traceback."""

import sqlite3

import pytest

from stackci import cli
from stackci.results.check import check_store
from stackci.results.store import Store


def damage_table(path, table: str) -> None:
    """Garbage over the table's root page, as a failing disk would leave it."""
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        root = db.execute("SELECT rootpage FROM sqlite_master WHERE name = ?",
                          (table,)).fetchone()[0]
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
    with open(path, "r+b") as file:
        file.seek((root - 1) * page_size)
        file.write(b"\xde\xad\xbe\xef" * (page_size // 4))


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "results.db"
    store = Store(f"sqlite:///{path}")
    run_id = store.start_run(tier="smoke", budget_s=60, plan={})
    store.add_jobs(run_id, [{"key": f"job{i}", "stage": "build", "name": "x", "sku": None,
                             "combination_id": None} for i in range(3)])
    store.close()
    return path


def test_a_whole_store_is_ok(db):
    health = check_store(f"sqlite:///{db}")
    assert health.ok and "jobs" in health.tables


def test_a_damaged_page_names_its_table(db, monkeypatch, capsys):
    damage_table(db, "jobs")
    health = check_store(f"sqlite:///{db}")
    assert not health.ok and "jobs" in health.damaged and "runs" not in health.damaged
    monkeypatch.setenv("STACKCI_DB", f"sqlite:///{db}")
    assert cli.main(["store", "check", "--home", str(db.parent / "home")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "is damaged: tables jobs (" in err


def test_a_damaged_store_is_one_line_for_any_command(db, monkeypatch, capsys):
    damage_table(db, "jobs")
    monkeypatch.setenv("STACKCI_DB", f"sqlite:///{db}")
    assert cli.main(["runs", "--home", str(db.parent / "home")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("stackci: error: the results database failed: ")
    assert err.count("\n") == 1


def test_a_file_that_is_no_database(tmp_path, monkeypatch, capsys):
    path = tmp_path / "results.db"
    path.write_bytes(b"not a database at all" * 100)
    assert not check_store(f"sqlite:///{path}").ok
    monkeypatch.setenv("STACKCI_DB", f"sqlite:///{path}")
    assert cli.main(["store", "check", "--home", str(tmp_path / "home")]) == 1
    err = capsys.readouterr().err
    assert "is damaged" in err and err.count("\n") == 1
