"""The saq delivery worker run inside a test, over the test database and Redis."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from saq.queue.redis import RedisQueue
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.events.webhooks.fanout import WebhookFanOut
from server.events.webhooks.jobs import create_worker
from server.events.webhooks.queue import create_queue
from server.settings import Settings


@dataclass(frozen=True, slots=True)
class FakeEvent:
    """An event as the outbox relay hands it to its consumers."""

    type: str
    data: dict[str, Any]
    event_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    entity_id: str = "T3JkZXI6MQ"
    tags: frozenset[str] = frozenset()
    request_id: str | None = None
    occurred_at: datetime = field(default_factory=lambda: datetime.now(UTC))


@contextlib.asynccontextmanager
async def running_worker(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> AsyncIterator[RedisQueue]:
    queue = create_queue(settings)
    await queue.connect()
    worker = create_worker(settings=settings, queue=queue, sessionmaker=sessionmaker)
    task = asyncio.create_task(worker.start())
    try:
        yield queue
    finally:
        await worker.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await queue.disconnect()


async def fan_out(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    queue: RedisQueue,
    events: list[FakeEvent],
) -> None:
    """What the relay does with a batch: consume in its transaction, then the action."""
    async with sessionmaker.begin() as session:
        after = await WebhookFanOut(settings=settings, queue=queue).consume(session, events)
    if after is not None:
        await after()


async def eventually(check: Callable[[], Any], *, within: float = 20.0) -> Any:
    """Polls the async `check` until it returns a truthy value (returned), else fails."""
    deadline = time.monotonic() + within
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached in {within}s: last value {value!r}")
        await asyncio.sleep(0.05)
