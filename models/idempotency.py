"""Idempotency keys of writes: one row per (user, key), written in the write's own transaction."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigId, UTCDateTime, utcnow


class IdempotencyKey(Base):
    """A committed keyed write: what was asked (`request_hash`), what it wrote (`field`,
    `result_id`, the cache tags it changed), and its answer once it was sent."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        # Decides between two requests racing with one key: the second insert fails.
        UniqueConstraint("user_id", "key"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(Text)
    request_hash: Mapped[str] = mapped_column(Text)
    # Set at the end of the write's transaction that claimed the key (NULL only
    # inside it), so never NULL once committed.
    field: Mapped[str | None] = mapped_column(Text)
    result_id: Mapped[int | None] = mapped_column(BigId)
    changes: Mapped[str | None] = mapped_column(Text)
    """The change announcement's tags as JSON: {"entities": [...], "lists": [...]}."""
    response: Mapped[str | None] = mapped_column(Text)
    """The answer's JSON (without `extensions`), stored after it was produced."""
    # Expiry and the purge look rows up by age.
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
