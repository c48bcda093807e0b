"""licence extensions, budget top-ups and the end of a licence

No schema change: an extension moves ``licences.expires_at``, a top-up raises the
licence's ``budgets`` row, and a licence's end cancels templates and query requests
through their ``status`` columns (the word ``cancelled``); ``expired`` is computed,
never stored. The revision keeps its number in the sequence.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 04:00:00
"""



revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
