"""The relay: outbox rows published in id order, at least once, marked once published;
consumers' writes commit (or roll back) with the marking; concurrent relays share the
rows (PostgreSQL: SKIP LOCKED; SQLite: the write lock) and publish each once per pass."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest
import pytest_asyncio
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Category, OutboxEvent
from resolvers.changes import Changes
from resolvers.events import Event, new_event, record_events
from server.events.protocol import AfterCommit
from server.events.relay import Relay
from tests.conftest import Database


class Collect:
    """A publisher that keeps what it is given; it fails while `failing` is set, and waits
    for `release` when given one."""

    def __init__(self, release: asyncio.Event | None = None) -> None:
        self.published: list[str] = []
        self.failing = False
        self.release = release
        self.entered = asyncio.Event()

    async def publish(self, events: Sequence[Event]) -> None:
        self.entered.set()
        if self.release is not None:
            await self.release.wait()
        if self.failing:
            raise ConnectionError("Redis is down")
        self.published.extend(event.event_id for event in events)


async def add_events(db: Database, count: int) -> list[str]:
    events = [
        new_event("product.updated", f"P{i}", {"n": i}, Changes.from_tags({f"Product:{i}"}))
        for i in range(count)
    ]
    async with db.sessionmaker.begin() as session:
        await record_events(session, events)
    return [event.event_id for event in events]


async def unpublished(db: Database) -> int:
    async with db.sessionmaker() as session:
        return int(
            await session.scalar(select(func.count()).where(OutboxEvent.published_at.is_(None)))
            or 0
        )


def relay(db: Database, publisher: Collect, **kw: object) -> Relay:
    return Relay(
        sessionmaker=db.sessionmaker,
        dialect="postgresql" if db.backend == "postgresql" else "sqlite",
        publisher=publisher,
        **kw,  # type: ignore[arg-type]
    )


@pytest_asyncio.fixture
async def ids(db: Database) -> AsyncIterator[list[str]]:
    yield await add_events(db, 12)


async def test_publishes_in_order_and_marks_each_row_once(db: Database, ids: list[str]) -> None:
    publisher = Collect()
    subject = relay(db, publisher, batch_size=5)

    assert await subject.drain() == 12
    assert await subject.relay_once() == 0

    assert publisher.published == ids
    assert await unpublished(db) == 0


async def test_a_failed_publish_leaves_the_rows_for_the_next_pass(
    db: Database, ids: list[str]
) -> None:
    publisher = Collect()
    publisher.failing = True
    subject = relay(db, publisher)

    with pytest.raises(ConnectionError):
        await subject.relay_once()
    assert await unpublished(db) == 12

    publisher.failing = False
    assert await subject.drain() == 12
    assert publisher.published == ids


class Recorder:
    """A consumer writing a row in the relay's transaction, and acting after its commit."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.seen_after_commit: list[int] = []

    async def consume(self, session: AsyncSession, events: Sequence[Event]) -> AfterCommit:
        await session.execute(insert(Category).values(name=f"consumed {len(events)}"))

        async def after() -> None:
            async with self.db.sessionmaker() as other:
                self.seen_after_commit.append(
                    int(await other.scalar(select(func.count()).select_from(Category)) or 0)
                )

        return after


async def test_consumers_write_in_the_relays_transaction(db: Database, ids: list[str]) -> None:
    publisher = Collect()
    recorder = Recorder(db)
    subject = relay(db, publisher, consumers=[recorder])

    publisher.failing = True
    with pytest.raises(ConnectionError):
        await subject.relay_once()
    async with db.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Category)) == 0
    assert recorder.seen_after_commit == []

    publisher.failing = False
    await subject.relay_once()
    assert recorder.seen_after_commit == [1]  # committed before the action ran


async def test_two_relays_publish_each_event_once_per_pass(db: Database, ids: list[str]) -> None:
    release = asyncio.Event()
    first, second = Collect(release), Collect()
    one, two = relay(db, first, batch_size=5), relay(db, second, batch_size=5)

    holding = asyncio.create_task(one.relay_once())  # claims 5 rows and holds them
    await asyncio.wait_for(first.entered.wait(), timeout=10)
    other = asyncio.create_task(two.drain())
    if db.backend == "postgresql":
        # SKIP LOCKED: the second relay takes the other rows without waiting.
        assert await asyncio.wait_for(other, timeout=10) == 7
    else:
        await asyncio.sleep(0.3)  # SQLite: it waits for the first relay's write lock
        assert not other.done()
    release.set()
    assert await holding == 5
    await asyncio.wait_for(other, timeout=10)

    assert first.published == ids[:5]
    assert sorted(second.published) == sorted(ids[5:])
    assert await unpublished(db) == 0
