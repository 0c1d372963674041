"""Baseline: the schema the harness kept before Alembic (`schema_version` 1), as
`Base.metadata.create_all` made it. Frozen: never edit it; change the schema in a new revision.

A database from before Alembic (a `schema_version` table holding 1, no `alembic_version`) is
stamped at this revision and upgraded from here (results/migrate.py).

Revision ID: 0001_baseline
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_baseline"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('combinations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('key', sa.String(length=128), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key')
    )
    op.create_table('contract_verdicts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('batch', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('interface', sa.String(length=64), nullable=False),
    sa.Column('consumer', sa.String(length=64), nullable=False),
    sa.Column('consumer_version', sa.String(length=64), nullable=False),
    sa.Column('consumer_label', sa.String(length=80), nullable=False),
    sa.Column('consumer_commit', sa.String(length=64), nullable=False),
    sa.Column('consumer_tree', sa.String(length=64), nullable=False),
    sa.Column('tests_commit', sa.String(length=64), nullable=False),
    sa.Column('tests_hash', sa.String(length=64), nullable=False),
    sa.Column('provider', sa.String(length=64), nullable=False),
    sa.Column('provider_version', sa.String(length=64), nullable=False),
    sa.Column('provider_label', sa.String(length=80), nullable=False),
    sa.Column('provider_commit', sa.String(length=64), nullable=False),
    sa.Column('provider_tree', sa.String(length=64), nullable=False),
    sa.Column('environment_key', sa.String(length=64), nullable=False),
    sa.Column('declared', sa.Boolean(), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('duration_s', sa.Float(), nullable=True),
    sa.Column('cached_from', sa.Integer(), nullable=True),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_contract_verdicts_batch'), 'contract_verdicts', ['batch'], unique=False)
    op.create_index(op.f('ix_contract_verdicts_consumer_tree'), 'contract_verdicts', ['consumer_tree'], unique=False)
    op.create_index(op.f('ix_contract_verdicts_provider_tree'), 'contract_verdicts', ['provider_tree'], unique=False)
    op.create_table('runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('tier', sa.String(length=40), nullable=False),
    sa.Column('budget_s', sa.Float(), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('harness_version', sa.String(length=40), nullable=False),
    sa.Column('plan', sa.JSON(), nullable=False),
    sa.Column('summary', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('schema_version',
    sa.Column('version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('version')
    )
    op.create_table('skus',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('combination_locks',
    sa.Column('combination_id', sa.Integer(), nullable=False),
    sa.Column('lock_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('lock', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['combination_id'], ['combinations.id'], ),
    sa.PrimaryKeyConstraint('combination_id', 'lock_hash')
    )
    op.create_table('combination_modules',
    sa.Column('combination_id', sa.Integer(), nullable=False),
    sa.Column('module', sa.String(length=64), nullable=False),
    sa.Column('version', sa.String(length=64), nullable=False),
    sa.Column('commit', sa.String(length=64), nullable=False),
    sa.Column('tree_hash', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['combination_id'], ['combinations.id'], ),
    sa.PrimaryKeyConstraint('combination_id', 'module')
    )
    op.create_table('jobs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('combination_id', sa.Integer(), nullable=True),
    sa.Column('key', sa.String(length=400), nullable=False),
    sa.Column('stage', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('sku', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=True),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.Column('duration_s', sa.Float(), nullable=True),
    sa.Column('estimate_s', sa.Float(), nullable=True),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['combination_id'], ['combinations.id'], ),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('run_id', 'key')
    )
    op.create_index(op.f('ix_jobs_run_id'), 'jobs', ['run_id'], unique=False)
    op.create_table('metrics',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('combination_id', sa.Integer(), nullable=True),
    sa.Column('workload', sa.String(length=255), nullable=True),
    sa.Column('sku', sa.String(length=64), nullable=True),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Float(), nullable=False),
    sa.Column('unit', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['combination_id'], ['combinations.id'], ),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], ),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_metrics_job_id'), 'metrics', ['job_id'], unique=False)
    op.create_index(op.f('ix_metrics_run_id'), 'metrics', ['run_id'], unique=False)
    op.create_table('op_profiles',
    sa.Column('job_id', sa.Integer(), nullable=False),
    sa.Column('idx', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('op_type', sa.String(length=64), nullable=False),
    sa.Column('kernel', sa.String(length=255), nullable=False),
    sa.Column('fusion', sa.String(length=255), nullable=False),
    sa.Column('cycles', sa.Float(), nullable=False),
    sa.Column('macs', sa.Float(), nullable=False),
    sa.Column('bytes_read', sa.Float(), nullable=False),
    sa.Column('bytes_written', sa.Float(), nullable=False),
    sa.Column('unit', sa.String(length=32), nullable=False),
    sa.Column('array_utilization', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], ),
    sa.PrimaryKeyConstraint('job_id', 'idx')
    )


def downgrade() -> None:
    for table in ("op_profiles", "metrics", "jobs", "combination_modules", "combination_locks",
                  "skus", "schema_version", "runs", "contract_verdicts", "combinations"):
        op.drop_table(table)
