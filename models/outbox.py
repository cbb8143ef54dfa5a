"""The transactional outbox: the events of committed writes, recorded in the write's own
transaction and published later by the relay (server/events/relay.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigId, UTCDateTime, utcnow


class OutboxEvent(Base):
    """One event of a committed write; `published_at` is set once the relay published it."""

    __tablename__ = "outbox_events"
    __table_args__ = (
        # The relay's scan: unpublished rows in id order, without reading the published ones.
        Index(
            "ix_outbox_events_unpublished",
            "id",
            postgresql_where=text("published_at IS NULL"),
            sqlite_where=text("published_at IS NULL"),
        ),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    """The relay's order: ids grow with the commits' inserts."""
    event_id: Mapped[str] = mapped_column(Text, unique=True)
    """A uuid4 string: consumers are idempotent by it."""
    type: Mapped[str] = mapped_column(Text)
    entity_id: Mapped[str] = mapped_column(Text)
    """The entity's global ID, as the API spells it."""
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    """The entity as the API shows it to an ADMIN (a webhook body's `data`)."""
    tags: Mapped[list[str]] = mapped_column(JSON)
    """The cache tags the write changed."""
    request_id: Mapped[str | None] = mapped_column(Text)
    # Pruning looks rows up by age.
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
