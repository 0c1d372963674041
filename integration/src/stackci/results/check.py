"""`stackci store check`: is the results database whole, and if not, which tables are hurt.

SQLite: `PRAGMA integrity_check`, its messages mapped to tables (by root page, by index, and
by page through the dbstat table where SQLite has it), and every table read through to the
end, so a damaged page names its table even when the check's message does not. PostgreSQL has
no integrity_check: every table is read through (a damaged heap page fails the read); the
server's own amcheck extension checks indexes when the administrator installs it.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import SQLAlchemyError

from stackci.errors import UsageError


@dataclass
class StoreHealth:
    url: str
    tables: list[str] = field(default_factory=list)
    damaged: dict[str, str] = field(default_factory=dict)  # table -> first problem seen
    problems: list[str] = field(default_factory=list)  # the check's own messages

    @property
    def ok(self) -> bool:
        return not self.damaged and not self.problems


def check_store(url: str) -> StoreHealth:
    if url.startswith("sqlite:///"):
        return _check_sqlite(url, Path(url.removeprefix("sqlite:///")))
    return _check_server(url)


def _check_sqlite(url: str, path: Path) -> StoreHealth:
    if not path.is_file():
        raise UsageError(f"no results database at {path}")
    health = StoreHealth(url)
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        objects = db.execute("SELECT type, name, tbl_name, rootpage FROM sqlite_master").fetchall()
    except sqlite3.DatabaseError as exc:
        health.problems.append(f"cannot read the schema: {exc}")
        return health
    with db:
        health.tables = sorted(name for kind, name, _, _ in objects if kind == "table")
        table_of = {name: table for _, name, table, _ in objects}
        by_root = {root: table for _, _, table, root in objects if root}
        try:
            messages = [row[0] for row in db.execute("PRAGMA integrity_check(100)")]
        except sqlite3.DatabaseError as exc:
            messages = [str(exc)]
        if messages != ["ok"]:
            health.problems = messages
            for message in messages:
                for table in _tables_named(db, message, table_of, by_root):
                    health.damaged.setdefault(table, message)
        for table in health.tables:
            try:
                for _ in db.execute(f'SELECT * FROM "{table}"'):
                    pass
            except sqlite3.DatabaseError as exc:
                health.damaged.setdefault(table, f"reading it: {exc}")
    return health


def _tables_named(db, message: str, table_of: dict, by_root: dict) -> set[str]:
    found = {table_of[name] for name in re.findall(r"index (\w+)", message) if name in table_of}
    found |= {by_root[int(n)] for n in re.findall(r"[Tt]ree (\d+)", message)
              if int(n) in by_root}
    for page in re.findall(r"[Pp]age (\d+)", message):
        try:
            row = db.execute("SELECT name FROM dbstat WHERE pageno = ?", (int(page),)).fetchone()
        except sqlite3.DatabaseError:
            row = None  # no dbstat in this SQLite, or the page is past reading
        if row and row[0] in table_of:
            found.add(table_of[row[0]])
    return found


def _check_server(url: str) -> StoreHealth:
    health = StoreHealth(url)
    try:
        engine = create_engine(url)
        with engine.connect() as connection:
            health.tables = sorted(inspect(connection).get_table_names())
            for table in health.tables:
                try:
                    connection.execute(text(f'SELECT * FROM "{table}"')).fetchall()
                except SQLAlchemyError as exc:
                    connection.rollback()
                    health.damaged[table] = " ".join(str(exc.orig or exc).split())[:200]
    except SQLAlchemyError as exc:
        health.problems.append(" ".join(str(exc).split())[:200])
    return health
