"""observables: ε floor and query cap per budget level, public-table statistics and
the published digest of each version

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 22:10:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('budgets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('min_epsilon_per_query', sa.Float(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('max_queries', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('queries_used', sa.Integer(), server_default='0', nullable=False))
    with op.batch_alter_table('dataset_versions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('public_stats', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('digest', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('dataset_versions', schema=None) as batch_op:
        batch_op.drop_column('digest')
        batch_op.drop_column('public_stats')
    with op.batch_alter_table('budgets', schema=None) as batch_op:
        batch_op.drop_column('queries_used')
        batch_op.drop_column('max_queries')
        batch_op.drop_column('min_epsilon_per_query')
