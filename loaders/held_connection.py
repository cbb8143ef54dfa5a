"""One pooled connection an operation keeps between its batches.

An operation's batches run level by level: the product page's product, then its
category, rating and reviews side by side, then the reviews' authors. Each batch
needs a connection of its own while it runs (siblings run concurrently), and
checking one out of SQLAlchemy's pool and back costs CPU even without the
greenlet hops (loaders/pool_checkout.py): the pool's bookkeeping, its events,
a Connection and its AsyncConnection. So the operation
keeps one connection between its batches: a batch takes it when it is free,
checks another out of the pool when it is not, and gives back the one it used;
one idle connection is kept, any other goes straight back to the pool. The
product page then checks out three connections instead of five, a customer's
order history one instead of three. Nothing is held beyond the operation, never
more than one connection idle, and none at all while the pool has none to spare
(every connection out, no more may be opened): then a batch of this or another
operation may be waiting for one, and it goes straight back.

Only lean reads (loaders/prepared.py) use it: they run outside any transaction,
so a connection carries no state from one batch to the next. A batch that
failed closes its connection (it may have been interrupted mid-statement), and
one still running when the operation ends closes its own.

No library keeps a connection per unit of work like this: SQLAlchemy's own way
is a Session, whose connection cannot be shared by concurrent batches.

Example:
    async with holding_connection(engine):
        result = await executor.execute(...)  # batches reuse one connection
"""

from __future__ import annotations

import contextvars
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import Pool, QueuePool

from loaders.pool_checkout import checkin, checkout


class HeldConnection:
    """The connection an operation keeps between batches on `engine` (at most one idle)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._idle: AsyncConnection | None = None
        self._ended = False

    async def take(self) -> AsyncConnection:
        """The idle connection, or one checked out now."""
        connection, self._idle = self._idle, None
        if connection is not None and not connection.invalidated:
            return connection
        if connection is not None:
            await checkin(connection)
        return await checkout(self.engine)

    async def give_back(self, connection: AsyncConnection, *, reusable: bool) -> None:
        """Keeps `connection` idle for the next batch when it may be reused, none is, and
        the pool has connections to spare; else closes it (back to the pool)."""
        if (
            reusable
            and not self._ended
            and self._idle is None
            and not connection.invalidated
            and _has_spare(self.engine.sync_engine.pool)
        ):
            self._idle = connection
            return
        await checkin(connection)

    async def end(self) -> None:
        """Gives the idle connection back to the pool; batches still running close their own."""
        self._ended = True
        connection, self._idle = self._idle, None
        if connection is not None:
            await checkin(connection)


def _has_spare(pool: Pool) -> bool:
    """Whether `pool` could hand out a connection now without waiting: one is free, or
    it may open another. When it cannot, a batch of this or another operation may be
    waiting, and a connection kept idle here would keep it waiting."""
    if not isinstance(pool, QueuePool):
        return False
    limit = pool._max_overflow  # no public reading of it; -1: no limit
    return pool.checkedin() > 0 or limit == -1 or pool.overflow() < limit


_held: contextvars.ContextVar[HeldConnection | None] = contextvars.ContextVar(
    "storefront_held_connection", default=None
)


def held_connection(engine: AsyncEngine) -> HeldConnection | None:
    """The connection the running operation keeps on `engine`, if it keeps one."""
    held = _held.get()
    return held if held is not None and held.engine is engine else None


@asynccontextmanager
async def holding_connection(engine: AsyncEngine) -> AsyncIterator[None]:
    """Within it, the current task and the tasks it starts (the loaders' batches) read
    on lean connections of `engine` kept between batches; given back at its end."""
    held = HeldConnection(engine)
    token = _held.set(held)
    try:
        yield
    finally:
        _held.reset(token)
        await held.end()
