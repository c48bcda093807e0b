"""the notification outbox: events for requesters, operators, reviewers and owners, and their deliveries;
the sharing outbox (share_notifications) moves into it as share_new_version notices

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 04:00:00
"""

from alembic import op
import sqlalchemy as sa

NOTICES = sa.table('notifications', sa.column('id', sa.Integer), sa.column('kind', sa.String), sa.column('recipient_id', sa.Integer),
                   sa.column('address', sa.String), sa.column('object_type', sa.String),
                   sa.column('object_id', sa.String), sa.column('facts', sa.JSON), sa.column('dedup_key', sa.String),
                   sa.column('created_at', sa.DateTime(timezone=True)))
DATASETS = sa.table('datasets', sa.column('id', sa.Integer), sa.column('name', sa.String))
SHARE_NOTICES = sa.table('share_notifications', sa.column('id', sa.Integer), sa.column('request_id', sa.Integer),
                         sa.column('recipient_id', sa.Integer), sa.column('dataset_id', sa.Integer),
                         sa.column('version_number', sa.Integer), sa.column('kind', sa.String),
                         sa.column('created_at', sa.DateTime(timezone=True)))


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('notifications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('recipient_id', sa.Integer(), nullable=True),
    sa.Column('address', sa.String(length=300), nullable=True),
    sa.Column('object_type', sa.String(length=32), nullable=False),
    sa.Column('object_id', sa.String(length=64), nullable=False),
    sa.Column('facts', sa.JSON(), nullable=False),
    sa.Column('dedup_key', sa.String(length=200), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['recipient_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('dedup_key')
    )
    op.create_table('notification_deliveries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('notification_id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_error', sa.String(length=300), nullable=False),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['notification_id'], ['notifications.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('notification_id', 'channel')
    )
    op.create_table('notification_channels',
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('since_id', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('channel')
    )
    op.create_table('notification_addresses',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=300), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('user_id')
    )
    conn = op.get_bind()
    n, d = SHARE_NOTICES.c, DATASETS.c
    moved = conn.execute(sa.select(n.request_id, n.recipient_id, n.version_number, n.created_at, d.name)
                         .select_from(SHARE_NOTICES.join(DATASETS, d.id == n.dataset_id)).order_by(n.id)).fetchall()
    if moved:
        op.bulk_insert(NOTICES, [
            {"kind": "share_new_version", "recipient_id": r[1], "address": None, "object_type": "share_request",
             "object_id": str(r[0]), "facts": {"dataset": r[4], "version": r[2], "grant": r[0]},
             "dedup_key": f"share_new_version:{r[0]}:{r[2]}:{r[1]}", "created_at": r[3]} for r in moved])
    op.drop_table('share_notifications')


def downgrade() -> None:
    op.create_table('share_notifications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('recipient_id', sa.Integer(), nullable=False),
    sa.Column('dataset_id', sa.Integer(), nullable=False),
    sa.Column('version_number', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['dataset_id'], ['datasets.id'], ),
    sa.ForeignKeyConstraint(['recipient_id'], ['users.id'], ),
    sa.ForeignKeyConstraint(['request_id'], ['share_requests.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('request_id', 'version_number', 'kind')
    )
    conn = op.get_bind()
    c = NOTICES.c
    rows = conn.execute(sa.select(c.recipient_id, c.facts, c.created_at).where(c.kind == 'share_new_version')
                        .order_by(c.id)).fetchall()
    back = []
    for recipient, facts, created in rows:
        dataset = conn.execute(sa.select(DATASETS.c.id).where(DATASETS.c.name == facts["dataset"])).scalar()
        back.append({"request_id": facts["grant"], "recipient_id": recipient, "dataset_id": dataset,
                     "version_number": facts["version"], "kind": "new_version", "created_at": created})
    if back:
        op.bulk_insert(SHARE_NOTICES, back)
    for table in ('notification_addresses', 'notification_channels', 'notification_deliveries', 'notifications'):
        op.drop_table(table)
