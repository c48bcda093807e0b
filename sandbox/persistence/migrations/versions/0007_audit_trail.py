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
        batch_op.add_column(sa.Column('key_id', sa.String(length=16), nullable=True))
    with op.batch_alter_table('audit_records', schema=None) as batch_op:
        batch_op.alter_column('format', server_default=None)
    with op.batch_alter_table('audit_head', schema=None) as batch_op:
        batch_op.add_column(sa.Column('key_id', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('signature', sa.String(length=128), nullable=True))
    op.create_table('signing_keys',
    sa.Column('key_id', sa.String(length=16), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('public_key_pem', sa.Text(), nullable=False),
    sa.Column('from_seq', sa.BigInteger(), nullable=False),
    sa.Column('until_seq', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.String(length=40), nullable=False),
    sa.Column('retired_at', sa.String(length=40), nullable=True),
    sa.PrimaryKeyConstraint('key_id')
    )
    op.create_table('audit_published_heads',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.Column('key_id', sa.String(length=16), nullable=False),
    sa.Column('signature', sa.String(length=128), nullable=False),
    sa.Column('time', sa.String(length=40), nullable=False),
    sa.Column('place', sa.String(length=32), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )


def downgrade() -> None:
    op.drop_table('audit_published_heads')
    op.drop_table('signing_keys')
    with op.batch_alter_table('audit_head', schema=None) as batch_op:
        batch_op.drop_column('signature')
        batch_op.drop_column('key_id')
    with op.batch_alter_table('audit_records', schema=None) as batch_op:
        batch_op.drop_column('key_id')
        batch_op.drop_column('on_behalf_of')
        batch_op.drop_column('format')
