"""The workload analysis's tables: analysis_documents, analysis_ops, sweet_spots,
design_sweeps, advice_items (results/analysis.py).

Revision ID: 0004_analysis
Revises: 0003_regressions
"""

import sqlalchemy as sa
from alembic import op

revision = '0004_analysis'
down_revision = '0003_regressions'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('advice_items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('batch', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('team', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('change', sa.Text(), nullable=False),
    sa.Column('gain_us', sa.Float(), nullable=False),
    sa.Column('gain_share', sa.Float(), nullable=False),
    sa.Column('item', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('advice_items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_advice_items_batch'), ['batch'], unique=False)
        batch_op.create_index(batch_op.f('ix_advice_items_team'), ['team'], unique=False)

    op.create_table('analysis_documents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('job_key', sa.String(length=400), nullable=True),
    sa.Column('combination_id', sa.Integer(), nullable=True),
    sa.Column('label', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('workload', sa.String(length=255), nullable=False),
    sa.Column('sku', sa.String(length=64), nullable=False),
    sa.Column('precision', sa.String(length=16), nullable=False),
    sa.Column('modelled_cycles', sa.Float(), nullable=True),
    sa.Column('latency_us', sa.Float(), nullable=True),
    sa.Column('document', sa.JSON(), nullable=False),
    sa.Column('plan', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['combination_id'], ['combinations.id'], ),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('analysis_documents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_analysis_documents_run_id'), ['run_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_analysis_documents_workload'), ['workload'], unique=False)

    op.create_table('design_sweeps',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('label', sa.String(length=255), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('sku', sa.String(length=64), nullable=False),
    sa.Column('precision', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('points', sa.Integer(), nullable=False),
    sa.Column('document', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('design_sweeps', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_design_sweeps_run_id'), ['run_id'], unique=False)

    op.create_table('analysis_ops',
    sa.Column('document_id', sa.Integer(), nullable=False),
    sa.Column('idx', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('op_type', sa.String(length=64), nullable=False),
    sa.Column('unit', sa.String(length=32), nullable=False),
    sa.Column('kernel', sa.String(length=255), nullable=False),
    sa.Column('cycles', sa.Float(), nullable=False),
    sa.Column('compute', sa.Float(), nullable=False),
    sa.Column('fill_drain', sa.Float(), nullable=False),
    sa.Column('stall', sa.Float(), nullable=False),
    sa.Column('intensity', sa.Float(), nullable=True),
    sa.Column('achieved_ops_per_cycle', sa.Float(), nullable=True),
    sa.Column('bound', sa.String(length=32), nullable=False),
    sa.Column('roofline_bound', sa.String(length=32), nullable=False),
    sa.Column('helped_by', sa.String(length=64), nullable=False),
    sa.Column('gain', sa.Float(), nullable=False),
    sa.Column('counterfactual_cycles', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['document_id'], ['analysis_documents.id'], ),
    sa.PrimaryKeyConstraint('document_id', 'idx')
    )
    op.create_table('sweet_spots',
    sa.Column('document_id', sa.Integer(), nullable=False),
    sa.Column('workload', sa.String(length=255), nullable=False),
    sa.Column('sku', sa.String(length=64), nullable=False),
    sa.Column('precision', sa.String(length=16), nullable=False),
    sa.Column('label', sa.String(length=255), nullable=False),
    sa.Column('offline', sa.Integer(), nullable=True),
    sa.Column('server', sa.Integer(), nullable=True),
    sa.Column('knee', sa.Integer(), nullable=True),
    sa.Column('latency_bound_ms', sa.Float(), nullable=True),
    sa.Column('stopped', sa.Text(), nullable=False),
    sa.Column('confirmed', sa.Boolean(), nullable=True),
    sa.Column('points', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['document_id'], ['analysis_documents.id'], ),
    sa.PrimaryKeyConstraint('document_id')
    )
    with op.batch_alter_table('sweet_spots', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sweet_spots_workload'), ['workload'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('sweet_spots', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sweet_spots_workload'))

    op.drop_table('sweet_spots')
    op.drop_table('analysis_ops')
    with op.batch_alter_table('design_sweeps', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_design_sweeps_run_id'))

    op.drop_table('design_sweeps')
    with op.batch_alter_table('analysis_documents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_analysis_documents_workload'))
        batch_op.drop_index(batch_op.f('ix_analysis_documents_run_id'))

    op.drop_table('analysis_documents')
    with op.batch_alter_table('advice_items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_advice_items_team'))
        batch_op.drop_index(batch_op.f('ix_advice_items_batch'))

    op.drop_table('advice_items')
