"""Faults of the results store, on real nights in subprocesses: a database page damaged while
a night runs (the night goes on on its journal; `store check` names the table; `store
recover` and `--resume` bring every result back), and two processes creating one store."""

import sqlite3
import time

from faultstack import one_line_error, record


def damage(path, table: str) -> None:
    """Garbage over `table`'s root page under a running night: everything checkpointed into
    the main file first (so no newer copy of the page hides in the WAL), then a schema change
    from this connection, so the night's connections drop their cached pages."""
    with sqlite3.connect(path, timeout=30) as db:
        while db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]:
            time.sleep(0.05)
        root, page_size = db.execute(
            "SELECT rootpage, (SELECT page_size FROM pragma_page_size()) FROM sqlite_master "
            "WHERE name = ?", (table,)).fetchone()
    with open(path, "r+b") as file:
        file.seek((root - 1) * page_size)
        file.write(b"\xde\xad\xbe\xef" * (page_size // 4))
    with sqlite3.connect(path, timeout=30) as db:
        db.execute("CREATE TABLE fault_marker (x INTEGER)")


def test_a_database_page_damaged_mid_run(repo):
    repo.inject("beta", "slow", s=6, once=True)
    night = repo.start()
    repo.wait_running("beta", night)
    damage(repo.db, "jobs")
    _, stderr = night.communicate(timeout=180)
    assert night.returncode == 1, stderr
    assert stderr.count("the results database failed writing") == 1, stderr  # said once
    line = one_line_error(stderr)
    assert "the results database failed during the run" in line and "journal.jsonl" in line

    check = repo.run("store", "check", night=False)
    assert check.returncode == 1
    assert "is damaged: tables jobs" in one_line_error(check.stderr)

    fresh = f"sqlite:///{repo.tmp / 'fresh.db'}"
    recovered = repo.run("store", "recover", "--db", fresh, night=False)
    assert recovered.returncode == 0, recovered.stderr
    repo.db = repo.tmp / "fresh.db"
    jobs = repo.jobs()
    assert (jobs["alpha"]["status"], jobs["beta"]["status"]) == ("passed", "passed"), jobs
    assert len([m for m in repo.metrics() if m[1] == "latency_us"]) == 2
    again = repo.run("--resume", "--db", fresh)
    assert again.returncode == 0, again.stderr
    assert repo.run_status() == "completed"
    record("database page damaged mid-run (jobs table)",
           line.removeprefix("stackci: error: ").split(";")[0],
           "all (journal -> store recover --db fresh)", "yes, on the recovered store")


def test_two_processes_create_one_store(repo):
    first, second = repo.start("--workload", "alpha"), repo.start("--workload", "beta")
    outcomes = [night.communicate(timeout=300) for night in (first, second)]
    assert (first.returncode, second.returncode) == (0, 0), outcomes
    runs = repo.query("SELECT status FROM runs ORDER BY id")
    assert runs == [("completed",), ("completed",)]
    assert all("already exists" not in err for _, err in outcomes)
    record("two processes creating one store", "none needed: both nights completed",
           "2/2 runs", "not needed")
