"""A lean read's connection, out of SQLAlchemy's pool and back in without a greenlet hop.

`AsyncEngine.connect()` and `AsyncConnection.close()` each run the pool's own
(synchronous) code in a new greenlet, SQLAlchemy's bridge to asyncio: 58 µs of
CPU for a checkout and its check-in on the bench host, where the pool's work
itself takes 11 (a greenlet is a fresh 16 KiB frame stack each time, an mmap and
munmap pair). The greenlet is there for I/O only: opening a connection, a
pre-ping, the rollback of an open transaction. None is needed while the pool has
a connection idle and no pre-ping is asked for; then the checkout is SQLAlchemy's
synchronous one (`sync_engine.connect()`, its pool, events and bookkeeping
unchanged), wrapped in an `AsyncConnection`, which takes a started connection.
An idle connection that turns out to need opening after all (past its recycle
age, or invalidated) is refused by a `do_connect` listener before the driver is
asked to connect: the pool's handling of a failed connect invalidates it and
takes it back, and the checkout takes the usual path. (A recycled connection is
then terminated, not closed gracefully: outside a greenlet the adapter aborts its
transport, once per connection per `DB_POOL_RECYCLE`, and the server logs a
reset. Letting the driver's connect fail with MissingGreenlet instead would leave
asyncpg's `connect` coroutine unawaited, and warn.)

A check-in does no I/O when its pool keeps the connection and no transaction is
open (the asyncpg adapter's reset-on-return rollback is skipped), so it needs no
greenlet then either; the lean reads never open a transaction. An overflow
connection returned to a full pool is closed, which is I/O: the usual path. The
pool is the connection's own (after `dispose()` the engine has a new one).

For lean reads only (loaders/prepared.py): they alone are known never to open a
transaction. No library offers this: SQLAlchemy's asyncio extension always
bridges, and its sync engine is the documented way to its pool.

Example:
    connection = await checkout(engine)
    try:
        rows = await prepared.fetch(connection, statement, params)
    finally:
        await checkin(connection)
"""

from __future__ import annotations

from typing import Any
from weakref import WeakSet

from sqlalchemy import Engine, event
from sqlalchemy.exc import MissingGreenlet
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import QueuePool
from sqlalchemy.util.concurrency import in_greenlet


class _OpeningRefused(Exception):
    """A synchronous checkout reached the opening of a connection, which needs I/O."""


def _refuse_opening_outside_a_greenlet(*_args: Any) -> None:
    if not in_greenlet():
        raise _OpeningRefused


_guarded: WeakSet[Engine] = WeakSet()


def _guard(engine: Engine) -> None:
    if engine not in _guarded:
        event.listen(engine, "do_connect", _refuse_opening_outside_a_greenlet, insert=True)
        _guarded.add(engine)


async def checkout(engine: AsyncEngine) -> AsyncConnection:
    """A connection of `engine`'s pool: an idle one taken synchronously, else as usual."""
    sync_engine = engine.sync_engine
    pool = sync_engine.pool
    # `_pre_ping`: the pool's own setting, which it reads the same way.
    if isinstance(pool, QueuePool) and pool.checkedin() > 0 and not pool._pre_ping:
        _guard(sync_engine)
        try:
            return AsyncConnection(engine, sync_engine.connect())
        except (_OpeningRefused, MissingGreenlet):
            # The pool has invalidated that connection and taken it back. (MissingGreenlet:
            # an engine with a `creator`, which skips `do_connect`; none here does.)
            pass
    return await engine.connect()


async def checkin(connection: AsyncConnection) -> None:
    """Back to the pool: synchronously when it stays open there (no transaction to roll
    back, and room for it: an overflow connection returned to a full pool is closed,
    which is I/O), else as usual."""
    sync = connection.sync_connection
    # The pool the connection came from: after `dispose()` the engine has a new one.
    fairy = None if sync is None else sync._dbapi_connection
    pool = getattr(fairy, "_pool", None)
    if (
        sync is not None
        and not sync.in_transaction()
        and isinstance(pool, QueuePool)
        and pool.checkedin() < pool.size()
    ):
        sync.close()
        return
    await connection.close()
