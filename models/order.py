"""Orders and their line items."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigId, UTCDateTime, utcnow

ORDER_STATUSES = ("pending", "paid", "shipped", "completed", "cancelled")


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'paid', 'shipped', 'completed', 'cancelled')", name="status"
        ),
        # A customer's orders (optionally by status), newest first.
        Index(
            "ix_orders_user_id_status_created_at",
            "user_id",
            "status",
            text("created_at DESC"),
            text("id DESC"),
        ),
        # A customer's orders of any status, newest first, with the keyset tiebreak.
        Index(
            "ix_orders_user_id_created_at_id", "user_id", text("created_at DESC"), text("id DESC")
        ),
        # The admin order feed.
        Index("ix_orders_created_at_id", text("created_at DESC"), text("id DESC")),
        # The admin order feed filtered by status.
        Index("ix_orders_status_created_at_id", "status", text("created_at DESC"), text("id DESC")),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    status: Mapped[str] = mapped_column(Text)
    total_cents: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class OrderItem(Base):
    __tablename__ = "order_items"
    __table_args__ = (
        CheckConstraint("quantity BETWEEN 1 AND 1000", name="quantity_range"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price_cents: Mapped[int] = mapped_column(Integer)
