"""An index on metrics (name, workload, sku): the dashboard reads each figure's series and its
newest value per workload x SKU by these columns; without it every page query scanned the
whole table (a year of nights is millions of metric rows).

Revision ID: 0006_metric_series_index
Revises: 0005_leases
"""

from alembic import op

revision = "0006_metric_series_index"
down_revision = "0005_leases"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_metrics_series", "metrics", ["name", "workload", "sku"])


def downgrade() -> None:
    op.drop_index("ix_metrics_series", table_name="metrics")
