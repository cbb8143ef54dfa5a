"""The transactional outbox: events of committed writes, published by the relay.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

Written by hand to match models/outbox.py (checked by
tests/server/cli/test_migrations.py with alembic's compare_metadata).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# BIGINT on PostgreSQL; SQLite only auto-increments a column declared INTEGER.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Timestamp = sa.DateTime(timezone=True)

# PostgreSQL: a NOTIFY in the inserting transaction, delivered at its commit (never for
# a rollback), wakes the relays at once (server/events/notifications.py). Identical
# notifications of one transaction are folded into one by PostgreSQL.
NOTIFY_FUNCTION = """
CREATE FUNCTION outbox_events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('storefront_outbox', '');
    RETURN NULL;
END
$$
"""
NOTIFY_TRIGGER = """
CREATE TRIGGER outbox_events_notify AFTER INSERT ON outbox_events
FOR EACH STATEMENT EXECUTE FUNCTION outbox_events_notify()
"""


def upgrade() -> None:
    op.create_table(
        "outbox_events",
        sa.Column("id", BigId, nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("entity_id", sa.Text(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("request_id", sa.Text(), nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("published_at", Timestamp, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_events")),
        sa.UniqueConstraint("event_id", name=op.f("uq_outbox_events_event_id")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_outbox_events_created_at"), "outbox_events", ["created_at"])
    # Partial: the relay scans only what is still to publish.
    op.create_index(
        "ix_outbox_events_unpublished",
        "outbox_events",
        ["id"],
        postgresql_where=sa.text("published_at IS NULL"),
        sqlite_where=sa.text("published_at IS NULL"),
    )
    if op.get_context().dialect.name == "postgresql":
        op.execute(NOTIFY_FUNCTION)
        op.execute(NOTIFY_TRIGGER)


def downgrade() -> None:
    op.drop_table("outbox_events")  # and its trigger
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP FUNCTION outbox_events_notify()")
