"""Alembic owns the schema: `schema_version` is frozen at 2, a value no harness from before
Alembic accepts (it checked for exactly 1), so an older harness refuses an upgraded database
with its own one-line error instead of writing to tables it does not know. Nothing reads the
table after this revision; `alembic_version` says where a database stands.

Revision ID: 0002_alembic_owns_the_schema
Revises: 0001_baseline
"""

from alembic import op

revision = "0002_alembic_owns_the_schema"
down_revision = "0001_baseline"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DELETE FROM schema_version")
    op.execute("INSERT INTO schema_version (version) VALUES (2)")


def downgrade() -> None:
    op.execute("DELETE FROM schema_version")
    op.execute("INSERT INTO schema_version (version) VALUES (1)")
