"""How the store's SQLite connections are set up: WAL, a busy timeout that covers the switch to
WAL too, foreign keys. Its own file because the switch needs a retry loop of its own."""

from __future__ import annotations

import sqlite3
import time

# How long SQLite waits for a lock another process holds (busy_timeout, and the WAL switch).
BUSY_TIMEOUT_S = 30.0


def enable_wal(dbapi_connection, _record) -> None:
    # WAL lets the dashboard read while workers write; busy_timeout rides out short write locks.
    # busy_timeout first: switching a fresh file to WAL waits for a lock another process holds.
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
    _switch_to_wal(cursor)
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _switch_to_wal(cursor) -> None:
    """PRAGMA journal_mode=WAL, waiting as busy_timeout would. Switching a rollback-journal
    database (a legacy one) while another connection holds its write lock fails at once with
    "database is locked", whatever busy_timeout says: SQLite reads the header, then cannot
    upgrade that read to a write without risking a deadlock, so it does not wait. Several
    processes opening a legacy database at once meet it: one switches (holding the write lock
    while it waits for readers), the others fail (tests/results/test_migrations.py)."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
