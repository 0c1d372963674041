"""The results database's schema, kept by Alembic (results/migrations): every Store upgrades
its database to the one head when it opens.

Two processes may open a fresh or an old database at once (two nightlies, a nightly and the
dashboard): the upgrade runs in one transaction under the database's own lock, so the second
waits and then finds the work done. SQLite: `BEGIN IMMEDIATE` takes the file's write lock
(waited for by busy_timeout) and makes the DDL transactional, which pysqlite's implicit
transactions do not. PostgreSQL: DDL is transactional; a transaction-scoped advisory lock
serialises the upgraders (concurrent CREATE TABLE would otherwise fail on pg_type).
"""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine

from stackci.errors import StackciError

SCRIPT_LOCATION = "stackci.results:migrations"
BASELINE = "0001_baseline"  # the schema of the harness before Alembic (schema_version 1)
LEGACY_VERSION = 1
# pg_advisory_xact_lock's key: any fixed 64-bit number that other users of the server avoid.
ADVISORY_KEY = 0x5354_4143_4B43_4901  # "STACKCI" + 1


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    return config


def heads() -> tuple[str, ...]:
    return tuple(ScriptDirectory.from_config(alembic_config()).get_heads())


def head() -> str:
    found = heads()
    if len(found) != 1:
        raise StackciError(f"results/migrations has {len(found)} heads {sorted(found)}; "
                           "expected exactly one (point the newest revision's down_revision "
                           "at the other head)")
    return found[0]


def current(connection: Connection) -> tuple[str, ...]:
    return tuple(MigrationContext.configure(connection).get_current_heads())


def upgrade(engine: Engine, url: str) -> None:
    """Bring the database at `url` to the head revision; a no-op (no lock) when it is there."""
    target = head()
    with engine.connect() as connection:
        if current(connection) == (target,):
            return
    with engine.begin() as connection:
        _lock(connection)
        found = current(connection)  # again: another process may have upgraded meanwhile
        if found == (target,):
            return
        config = alembic_config()
        config.attributes["connection"] = connection
        if not found:
            _stamp_legacy(connection, config, url)
        try:
            command.upgrade(config, "head")
        except CommandError as exc:
            raise StackciError(f"results database {url} is at schema revision "
                               f"{', '.join(found)}, unknown to this harness (written by a newer "
                               "one?); use a harness at least as new") from exc


def _lock(connection: Connection) -> None:
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    elif connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_KEY})


def _stamp_legacy(connection: Connection, config: Config, url: str) -> None:
    """A database from before Alembic holds the baseline's tables: mark it as at the baseline
    so the upgrade starts from there. An empty database is left unstamped (built from scratch)."""
    tables = set(inspect(connection).get_table_names())
    if "schema_version" not in tables:
        if tables:
            raise StackciError(f"results database {url} has tables {sorted(tables)[:3]}... but "
                               "neither alembic_version nor schema_version: not a stackci "
                               "results database")
        return
    version = connection.scalar(text("SELECT max(version) FROM schema_version"))
    if version not in (None, LEGACY_VERSION):  # None: killed between create_all and insert
        raise StackciError(f"results database {url} has schema version {version} and no "
                           f"alembic_version; expected {LEGACY_VERSION} (a harness from before "
                           "migrations)")
    command.stamp(config, BASELINE)
