"""The catalog: categories (a two-level tree) and products."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigId, UTCDateTime, utcnow


class Category(Base):
    __tablename__ = "categories"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id"), index=True)


class Product(Base):
    __tablename__ = "products"
    __table_args__ = (
        CheckConstraint("price_cents >= 0", name="price_cents_non_negative"),
        # Category pages: active products of a category, newest first.
        Index(
            "ix_products_category_id_created_at_active",
            "category_id",
            text("created_at DESC"),
            text("id DESC"),
            postgresql_where=text("active"),
            sqlite_where=text("active"),
        ),
        # The default listing (NEWEST) and its keyset cursor.
        Index("ix_products_created_at_id", text("created_at DESC"), text("id DESC")),
        Index("ix_products_price_cents_id", "price_cents", "id"),
        Index("ix_products_name_id", "name", "id"),
        # Name search (`name ILIKE '%oak%'`) on PostgreSQL: trigrams let a GIN index
        # serve a pattern with a leading wildcard. Needs the pg_trgm extension; the
        # migration (0002) skips it where the extension cannot be created.
        Index(
            "ix_products_name_trgm",
            "name",
            postgresql_using="gin",
            postgresql_ops={"name": "gin_trgm_ops"},
        ).ddl_if(dialect="postgresql"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    sku: Mapped[str] = mapped_column(Text, unique=True)
    name: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    price_cents: Mapped[int] = mapped_column(Integer)
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
