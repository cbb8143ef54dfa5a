"""The relay: publishes the outbox's unpublished rows, in id order, at least once.

One pass (`relay_once`) is one transaction: claim a batch of unpublished rows,
hand it to every EventConsumer (what they write commits with the marking),
publish it (Redis, or this process's change feed without Redis), mark the rows
published, commit; then run the consumers' after-commit actions. A failure
anywhere before the commit rolls it all back and the rows are taken again by the
next pass; a crash after the publish and before the commit publishes them again
(consumers are idempotent by event id).

Claiming: on PostgreSQL `SELECT ... FOR UPDATE SKIP LOCKED`, so several relays
(any number of `storefront worker` processes) share the work and each row is
published once per pass; on SQLite the pass starts by marking its rows (an
UPDATE ... RETURNING), which takes the database's single write lock: a second
relay waits for the first to commit and then sees the rows as published.

Order: rows are taken in id order, but ids are given at insert, so a
transaction that commits late can have its row published after higher ids.

Example:
    relay = Relay(sessionmaker=sessionmaker, dialect="postgresql", publisher=publisher)
    while await relay.relay_once():
        pass
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import BigInteger, any_, bindparam, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from loaders import Dialect
from models import OutboxEvent, utcnow
from resolvers.events import Event
from server.events.protocol import AfterCommit, EventConsumer, EventPublisher

logger = logging.getLogger("storefront.events")

BATCH_SIZE = 200

_COLUMNS = (
    OutboxEvent.id,
    OutboxEvent.event_id,
    OutboxEvent.type,
    OutboxEvent.entity_id,
    OutboxEvent.payload,
    OutboxEvent.tags,
    OutboxEvent.request_id,
    OutboxEvent.created_at,
)

_CLAIM_POSTGRESQL = (
    select(*_COLUMNS)
    .where(OutboxEvent.published_at.is_(None))
    .order_by(OutboxEvent.id)
    .limit(bindparam("batch"))
    .with_for_update(skip_locked=True)
)
_MARK_POSTGRESQL = (
    update(OutboxEvent)
    .where(OutboxEvent.id == any_(bindparam("ids", type_=ARRAY(BigInteger()))))
    .values(published_at=bindparam("now"))
)
_CLAIM_SQLITE = (
    update(OutboxEvent)
    .where(
        OutboxEvent.id.in_(
            select(OutboxEvent.id)
            .where(OutboxEvent.published_at.is_(None))
            .order_by(OutboxEvent.id)
            .limit(bindparam("batch"))
            .scalar_subquery()
        )
    )
    .values(published_at=bindparam("now"))
    .returning(*_COLUMNS)
)


def _event(row: Any) -> Event:
    return Event(
        row.event_id,
        row.type,
        row.entity_id,
        row.payload,
        frozenset(row.tags),
        row.request_id,
        row.created_at,
    )


class Relay:
    """Publishes the outbox (see the module docstring)."""

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        dialect: Dialect,
        publisher: EventPublisher,
        consumers: Sequence[EventConsumer] = (),
        batch_size: int = BATCH_SIZE,
        on_published: Callable[[Sequence[Event]], None] | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._dialect = dialect
        self._publisher = publisher
        self._consumers = tuple(consumers)
        self.batch_size = batch_size
        self._on_published = on_published

    async def relay_once(self) -> int:
        """One pass: how many events it published (0: nothing was waiting)."""
        actions: list[AfterCommit] = []
        async with self._sessionmaker.begin() as session:
            events = await self._claim(session)
            if not events:
                return 0
            for consumer in self._consumers:
                action = await consumer.consume(session, events)
                if action is not None:
                    actions.append(action)
            await self._publisher.publish(events)
        if self._on_published is not None:
            self._on_published(events)
        for action in actions:
            try:
                await action()
            except Exception:
                logger.exception("an event consumer's after-commit action failed")
        return len(events)

    async def drain(self) -> int:
        """Passes until a pass finds less than a full batch; how many were published."""
        total = 0
        while True:
            published = await self.relay_once()
            total += published
            if published < self.batch_size:
                return total

    async def _claim(self, session: AsyncSession) -> list[Event]:
        # Statements built once (module level): one built per pass left reference
        # cycles for the collector after every write (tests/server/test_reference_cycles.py).
        now = utcnow()
        if self._dialect == "postgresql":
            rows = (await session.execute(_CLAIM_POSTGRESQL, {"batch": self.batch_size})).all()
            if rows:
                ids = [row.id for row in rows]
                await session.execute(_MARK_POSTGRESQL, {"ids": ids, "now": now})
        else:
            # The write comes first: it takes SQLite's write lock (the relays' lock).
            claimed = await session.execute(_CLAIM_SQLITE, {"batch": self.batch_size, "now": now})
            rows = sorted(claimed.all(), key=lambda row: row.id)
        return [_event(row) for row in rows]
