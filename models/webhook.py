"""Webhooks and their deliveries: who is told about which events, and how each telling went."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigId, UTCDateTime, utcnow

DELIVERY_STATUSES = ("pending", "delivered", "failed")


class Webhook(Base):
    """An endpoint subscribed to some event types. `secret` is the signing secret
    encrypted with WEBHOOK_SECRET_KEY (Fernet), never the secret itself."""

    __tablename__ = "webhooks"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    events: Mapped[list[str]] = mapped_column(JSON)
    """Dotted event types (`order.placed`, ...)."""
    secret: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class WebhookDelivery(Base):
    """One event told to one webhook: a single row (and `message_id`) however many
    attempts it takes. The row, not the job queue, is the truth about a delivery."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        # The fan-out runs at least once per event: the second insert is a no-op.
        UniqueConstraint("webhook_id", "event_id"),
        # A webhook's deliveries, newest first.
        Index(None, "webhook_id", "created_at"),
        # The sweep for deliveries whose job was lost.
        Index(None, "status", "next_attempt_at"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(Text)
    event_type: Mapped[str] = mapped_column(Text)
    message_id: Mapped[str] = mapped_column(Text, unique=True)
    body: Mapped[str] = mapped_column(Text)
    """The exact JSON body sent on every attempt (the outbox row may be pruned)."""
    status: Mapped[str] = mapped_column(Text, default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    """The attempt budget: `attempts` reaching it makes the delivery FAILED; a
    redelivery raises it by WEBHOOK_MAX_ATTEMPTS."""
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
