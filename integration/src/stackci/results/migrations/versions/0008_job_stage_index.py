"""A covering index on jobs (stage, run_id, combination_id, status): the compatibility
matrix's measured vectors (every workload job's run, combination and status, grouped by run
and combination) read it in its order, without visiting a year's job rows, each of which
carries its JSON details (docs/design.md, "A dashboard that scales with the history").

Revision ID: 0008_job_stage_index
Revises: 0007_metric_covering_index
"""

from alembic import op

revision = "0008_job_stage_index"
down_revision = "0007_metric_covering_index"
branch_labels = None
depends_on = None

COLUMNS = ["stage", "run_id", "combination_id", "status"]


def upgrade() -> None:
    op.create_index("ix_jobs_stage", "jobs", COLUMNS)


def downgrade() -> None:
    op.drop_index("ix_jobs_stage", table_name="jobs")
