"""What `storefront events status` reports: the outbox's depth and lag.

Each section is one async function of a session returning (title, rows); the
command prints them in order. Deliveries by status is a section of its own
(the webhooks work adds it to `SECTIONS`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import OutboxEvent, utcnow
from server.events.webhooks.status import deliveries_status

Section = Callable[[AsyncSession], Awaitable[tuple[str, dict[str, Any]]]]


async def outbox_status(session: AsyncSession) -> tuple[str, dict[str, Any]]:
    """Unpublished rows, the age of the oldest (seconds; None when there is none), the
    published rows still kept, and unpublished rows by event type."""
    unpublished = OutboxEvent.published_at.is_(None)
    row = (
        await session.execute(
            select(func.count(), func.min(OutboxEvent.created_at)).where(unpublished)
        )
    ).one()
    depth, oldest = int(row[0]), row[1]
    published = int(
        await session.scalar(select(func.count()).select_from(OutboxEvent).where(~unpublished)) or 0
    )
    by_type = {
        type_: int(count)
        for type_, count in await session.execute(
            select(OutboxEvent.type, func.count()).where(unpublished).group_by(OutboxEvent.type)
        )
    }
    return "outbox", {
        "unpublished": depth,
        "oldest_unpublished_age_seconds": _age(oldest),
        "published_kept": published,
        "unpublished_by_type": by_type,
    }


def _age(moment: datetime | None) -> float | None:
    if moment is None:
        return None
    # SQLite's aggregate comes back as text, without the column's type.
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return round((utcnow() - moment).total_seconds(), 3)


SECTIONS: list[Section] = [outbox_status, deliveries_status]
"""Printed by `storefront events status`, in this order."""
