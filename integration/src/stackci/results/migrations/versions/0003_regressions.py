"""The regressions' tables: regressions, regression_events, bisections (stackci.regressions).

The harness made them with create_all for a short while before Alembic, so a database of that
harness (stamped at the baseline) may hold them already: then they are left as they are.

Revision ID: 0003_regressions
Revises: 0002_alembic_owns_the_schema
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_regressions"
down_revision = "0002_alembic_owns_the_schema"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if "regressions" in sa.inspect(op.get_bind()).get_table_names():
        return
    op.create_table('regressions',
    sa.Column('id', sa.String(length=16), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('track', sa.String(length=255), nullable=False),
    sa.Column('workload', sa.String(length=255), nullable=False),
    sa.Column('sku', sa.String(length=64), nullable=False),
    sa.Column('precision', sa.String(length=16), nullable=False),
    sa.Column('metric', sa.String(length=64), nullable=False),
    sa.Column('last_good_run', sa.Integer(), nullable=False),
    sa.Column('first_bad_run', sa.Integer(), nullable=False),
    sa.Column('found_run', sa.Integer(), nullable=True),
    sa.Column('found_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('relative', sa.Float(), nullable=True),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('teams', sa.JSON(), nullable=False),
    sa.Column('search_of', sa.String(length=16), nullable=True),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('regressions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_regressions_first_bad_run'), ['first_bad_run'], unique=False)
        batch_op.create_index(batch_op.f('ix_regressions_state'), ['state'], unique=False)
        batch_op.create_index(batch_op.f('ix_regressions_track'), ['track'], unique=False)

    op.create_table('bisections',
    sa.Column('regression_id', sa.String(length=16), nullable=False),
    sa.Column('done', sa.Boolean(), nullable=False),
    sa.Column('probes', sa.Integer(), nullable=False),
    sa.Column('culprit', sa.Text(), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('updated_run', sa.Integer(), nullable=True),
    sa.Column('state', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['regression_id'], ['regressions.id'], ),
    sa.PrimaryKeyConstraint('regression_id')
    )
    op.create_table('regression_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('regression_id', sa.String(length=16), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('before', sa.String(length=20), nullable=False),
    sa.Column('after', sa.String(length=20), nullable=False),
    sa.Column('by', sa.String(length=255), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['regression_id'], ['regressions.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('regression_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_regression_events_regression_id'), ['regression_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('regression_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_regression_events_regression_id'))

    op.drop_table('regression_events')
    op.drop_table('bisections')
    with op.batch_alter_table('regressions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_regressions_track'))
        batch_op.drop_index(batch_op.f('ix_regressions_state'))
        batch_op.drop_index(batch_op.f('ix_regressions_first_bad_run'))

    op.drop_table('regressions')
