"""Alembic's entry point. The store (results/migrate.py) hands over its open connection, inside
the transaction and the lock it holds; the `alembic` command line (integration/alembic.ini)
opens `sqlalchemy.url` or STACKCI_DB itself."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine

from stackci.results.schema import Base

# render_as_batch: SQLite alters a table by copying it; autogenerate then writes batch ops that
# work on SQLite and PostgreSQL alike.
OPTIONS = {"target_metadata": Base.metadata, "render_as_batch": True, "compare_type": True}


def url() -> str:
    found = context.config.get_main_option("sqlalchemy.url") or os.environ.get("STACKCI_DB")
    if not found:
        raise SystemExit("alembic: set sqlalchemy.url (-x is not read) or STACKCI_DB to the "
                         "results database, e.g. sqlite:////tmp/scratch.db")
    return found


def run_with(connection) -> None:
    context.configure(connection=connection, **OPTIONS)
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    if context.is_offline_mode():
        context.configure(url=url(), literal_binds=True, **OPTIONS)
        with context.begin_transaction():
            context.run_migrations()
        return
    connection = context.config.attributes.get("connection")
    if connection is not None:
        run_with(connection)
        return
    engine = create_engine(url())
    with engine.begin() as connection:
        run_with(connection)
    engine.dispose()


main()
