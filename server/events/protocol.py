"""What the relay calls for every batch of outbox rows it publishes (webhooks fan out
through it without the relay knowing them)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from resolvers.events import Event

AfterCommit = Callable[[], Awaitable[None]]


class EventConsumer(Protocol):
    async def consume(self, session: AsyncSession, events: Sequence[Event]) -> AfterCommit | None:
        """Called inside the relay's transaction that marks `events` published (so what it
        writes commits, or rolls back, with the marking). The returned action runs after
        that commit (e.g. enqueue jobs). Must be idempotent by event_id: the relay
        delivers at least once."""


class EventPublisher(Protocol):
    """Where the relay publishes a batch, inside its transaction: a failure raises, and
    the batch stays unpublished (it is taken again on the next pass)."""

    async def publish(self, events: Sequence[Event]) -> None: ...
