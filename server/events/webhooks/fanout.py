"""`WebhookFanOut`: the relay's consumer that turns published events into deliveries.

Inside the relay's transaction that marks a batch published, it inserts one
`webhook_deliveries` row per (active webhook subscribed to the event's type,
event), ON CONFLICT DO NOTHING on (webhook_id, event_id): the relay publishes
at least once, so a second pass over an event adds nothing. After the commit
it queues the jobs of the batch's pending deliveries (saq keeps one job per
key, so queuing one twice runs it once); a job lost with a crash between
commit and queue is queued again by the worker's sweep.

Example:
    relay = Relay(..., consumers=[WebhookFanOut(settings=settings, queue=queue)])
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

from saq.queue.redis import RedisQueue
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from models import Webhook, WebhookDelivery, utcnow
from server.events.webhooks.queue import enqueue_deliveries
from server.settings import Settings

CHUNK = 500
"""Rows per INSERT: 11 values each stays far below SQLite's bound on parameters."""


class EventLike(Protocol):
    """What the fan-out reads of an event (resolvers.events.Event has it)."""

    @property
    def event_id(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def data(self) -> dict[str, Any]: ...
    @property
    def occurred_at(self) -> datetime: ...


def body_of(event: EventLike) -> str:
    """The Standard Webhooks body: the same bytes on every attempt of its deliveries."""
    return json.dumps(
        {"type": event.type, "timestamp": event.occurred_at.isoformat(), "data": event.data},
        separators=(",", ":"),
        ensure_ascii=False,
    )


def _insert(session: AsyncSession) -> Any:
    dialect = session.get_bind().dialect.name
    module: Any = postgresql if dialect == "postgresql" else sqlite
    return module.insert(WebhookDelivery).on_conflict_do_nothing(
        index_elements=["webhook_id", "event_id"]
    )


class WebhookFanOut:
    """server.events.protocol.EventConsumer for webhooks."""

    def __init__(self, *, settings: Settings, queue: RedisQueue) -> None:
        self.settings = settings
        self.queue = queue

    async def consume(
        self, session: AsyncSession, events: Sequence[EventLike]
    ) -> Callable[[], Awaitable[None]] | None:
        if not events:
            return None
        hooks = (
            await session.execute(
                select(Webhook.id, Webhook.events).where(Webhook.active.is_(True))
            )
        ).all()
        now = utcnow()
        rows = [
            {
                "webhook_id": webhook_id,
                "event_id": event.event_id,
                "event_type": event.type,
                "message_id": f"msg_{uuid.uuid4().hex}",
                "body": body_of(event),
                "status": "pending",
                "attempts": 0,
                "max_attempts": self.settings.webhook_max_attempts,
                "created_at": now,
                "next_attempt_at": now,
            }
            for event in events
            for webhook_id, types in hooks
            if event.type in types
        ]
        if not rows:
            return None
        for start in range(0, len(rows), CHUNK):
            await session.execute(_insert(session).values(rows[start : start + CHUNK]))
        event_ids = sorted({str(row["event_id"]) for row in rows})
        pending = list(
            await session.scalars(
                select(WebhookDelivery.id).where(
                    WebhookDelivery.event_id.in_(event_ids), WebhookDelivery.status == "pending"
                )
            )
        )

        async def enqueue() -> None:
            await enqueue_deliveries(self.queue, self.settings, pending)

        return enqueue
