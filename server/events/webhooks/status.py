"""Deliveries by status, for `storefront events status` and `storefront webhooks deliveries`."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import DELIVERY_STATUSES, WebhookDelivery


async def delivery_counts(sessionmaker: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    """Every status, 0 included, in the order PENDING, DELIVERED, FAILED."""
    async with sessionmaker() as session:
        rows = await session.execute(
            select(WebhookDelivery.status, func.count()).group_by(WebhookDelivery.status)
        )
        found = {status: int(count) for status, count in rows}
    return {status: found.get(status, 0) for status in DELIVERY_STATUSES}
