"""Deliveries by status: a section of `storefront events status`, and `storefront
webhooks deliveries`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import DELIVERY_STATUSES, WebhookDelivery


async def deliveries_status(session: AsyncSession) -> tuple[str, dict[str, Any]]:
    """("deliveries", every status with its count, 0 included: pending, delivered, failed)."""
    rows = await session.execute(
        select(WebhookDelivery.status, func.count()).group_by(WebhookDelivery.status)
    )
    found = {status: int(count) for status, count in rows}
    return "deliveries", {status: found.get(status, 0) for status in DELIVERY_STATUSES}


async def delivery_counts(sessionmaker: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    async with sessionmaker() as session:
        _, counts = await deliveries_status(session)
    return counts
