"""A covering index on metrics for the dashboard's trends: (name, run_id) first, then every
column the series and the weekly aggregates read, so SQLite answers them from the index
without visiting a year's table rows (publish of 365 nights x 17 combinations: 30.7 s with
0006 alone, 13.0 s with this one, same machine and load).

Revision ID: 0007_metric_covering_index
Revises: 0006_metric_series_index
"""

from alembic import op

revision = "0007_metric_covering_index"
down_revision = "0006_metric_series_index"
branch_labels = None
depends_on = None

COLUMNS = ["name", "run_id", "workload", "sku", "combination_id", "value", "job_id", "unit"]


def upgrade() -> None:
    op.create_index("ix_metrics_trend", "metrics", COLUMNS)


def downgrade() -> None:
    op.drop_index("ix_metrics_trend", table_name="metrics")
