"""Factory functions that insert rows with sensible defaults and return their ids."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import Category, Order, OrderItem, Product, Review, User

_seq = itertools.count(1)
BASE_TIME = datetime(2026, 1, 1, tzinfo=UTC)


def at(minutes: int) -> datetime:
    """A fixed timestamp `minutes` after BASE_TIME, for deterministic ordering."""
    return BASE_TIME + timedelta(minutes=minutes)


class Factory:
    """Inserts rows through one sessionmaker; every method returns the new id."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker

    async def _insert(self, model: Any, values: dict[str, Any]) -> int:
        async with self.sessionmaker.begin() as session:
            result = await session.execute(insert(model).values(**values).returning(model.id))
            return int(result.scalar_one())

    async def user(self, **values: Any) -> int:
        n = next(_seq)
        values.setdefault("email", f"user{n}@example.com")
        values.setdefault("name", f"User {n}")
        values.setdefault("role", "customer")
        values.setdefault("created_at", at(n))
        return await self._insert(User, values)

    async def category(self, **values: Any) -> int:
        values.setdefault("name", f"Category {next(_seq)}")
        return await self._insert(Category, values)

    async def product(self, **values: Any) -> int:
        n = next(_seq)
        if "category_id" not in values:
            values["category_id"] = await self.category()
        values.setdefault("sku", f"SKU-{n}")
        values.setdefault("name", f"Product {n}")
        values.setdefault("description", "")
        values.setdefault("price_cents", 1000 + n)
        values.setdefault("active", True)
        values.setdefault("created_at", at(n))
        values.setdefault("updated_at", values["created_at"])
        return await self._insert(Product, values)

    async def order(self, *, items: list[tuple[int, int, int]] | None = None, **values: Any) -> int:
        """An order; `items` are (product_id, quantity, unit_price_cents)."""
        n = next(_seq)
        if "user_id" not in values:
            values["user_id"] = await self.user()
        values.setdefault("status", "completed")
        values.setdefault("created_at", at(n))
        values.setdefault("total_cents", sum(q * p for _, q, p in items or []))
        order_id = await self._insert(Order, values)
        for product_id, quantity, price in items or []:
            await self._insert(
                OrderItem,
                {
                    "order_id": order_id,
                    "product_id": product_id,
                    "quantity": quantity,
                    "unit_price_cents": price,
                },
            )
        return order_id

    async def review(self, **values: Any) -> int:
        n = next(_seq)
        if "user_id" not in values:
            values["user_id"] = await self.user()
        if "product_id" not in values:
            values["product_id"] = await self.product()
        values.setdefault("rating", 4)
        values.setdefault("body", f"Review {n}")
        values.setdefault("created_at", at(n))
        return await self._insert(Review, values)
