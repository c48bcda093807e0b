"""governed classification changes and the source of each dataset version

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 04:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('classification_changes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dataset_id', sa.Integer(), nullable=False),
    sa.Column('from_class', sa.String(length=16), nullable=False),
    sa.Column('to_class', sa.String(length=16), nullable=False),
    sa.Column('version_number', sa.Integer(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('requested_by', sa.Integer(), nullable=False),
    sa.Column('decided_by', sa.Integer(), nullable=True),
    sa.Column('decision_reason', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['dataset_id'], ['datasets.id'], ),
    sa.ForeignKeyConstraint(['decided_by'], ['users.id'], ),
    sa.ForeignKeyConstraint(['requested_by'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('dataset_sources',
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('dataset_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['dataset_id'], ['datasets.id'], ),
    sa.PrimaryKeyConstraint('content_hash')
    )
    # versions registered before: each content hash belongs to the first dataset that registered it
    op.execute("INSERT INTO dataset_sources (content_hash, dataset_id, created_at) "
               "SELECT content_hash, MIN(dataset_id), MIN(created_at) FROM dataset_versions GROUP BY content_hash")


def downgrade() -> None:
    op.drop_table('dataset_sources')
    op.drop_table('classification_changes')
