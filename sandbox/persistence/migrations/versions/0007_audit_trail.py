"""the audit trail: who acted on whose behalf, the signing key of each record, the signed chain head, published heads and the signing-key history

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 04:00:00
"""



revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
