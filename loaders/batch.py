"""What a batch function is, and how one runs its statement."""

from __future__ import annotations

from collections.abc import AsyncIterator, Coroutine, Hashable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from typing import Any, Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from loaders import prepared
from loaders.held_connection import held_connection, holding_connection
from loaders.pool_checkout import checkin, checkout
from loaders.sql import Dialect, Statement

SessionMaker = async_sessionmaker[AsyncSession]

K = TypeVar("K")
V = TypeVar("V")
H = TypeVar("H", bound=Hashable)


class BatchFn(Protocol[K, V]):
    """Turns the keys of one DataLoader batch into their values, in key order."""

    def __call__(
        self, keys: list[K], /, *, sessionmaker: SessionMaker, dialect: Dialect
    ) -> Coroutine[Any, Any, list[V]]: ...


def unique(keys: Iterable[H]) -> list[H]:
    """`keys` without duplicates, in first-seen order."""
    return list(dict.fromkeys(keys))


READ_TRANSACTIONS = "storefront_read_transactions"
"""Execution option: `True` on an engine runs its reads in a transaction, for what
its transactions start with (behind PgBouncer, `SET LOCAL statement_timeout`)."""


@asynccontextmanager
async def read_connection(sessionmaker: SessionMaker) -> AsyncIterator[AsyncConnection]:
    """A connection of its own from the pool, for one batch's statement.

    Sibling fields resolve concurrently and a connection must never be shared
    between tasks, so every batch checks out its own. It is a bare
    `AsyncConnection` of the sessionmaker's engine rather than a session's: a batch
    uses no ORM state, and a session's set-up and tear-down (transaction states,
    identity map, a second greenlet hop) cost more CPU than the statement itself
    (bench/request_overhead.py, the product page). A sessionmaker bound to
    anything but an engine gets a session's connection, as before.

    Reads need no transaction: autocommit spares the BEGIN and ROLLBACK round
    trips that would otherwise wrap every batch's one statement, unless the
    engine asks for them (READ_TRANSACTIONS). The lean reads (loaders/prepared.py)
    go to the driver directly, so no BEGIN is ever sent for them: they need no
    isolation level set either.
    """
    bind = sessionmaker.kw.get("bind")
    if not isinstance(bind, AsyncEngine):
        async with sessionmaker() as session:
            yield await _read_connection_of(session)
        return
    if bind.get_execution_options().get(READ_TRANSACTIONS, False):
        async with bind.connect() as connection:
            await connection.begin()
            yield connection
        return
    if not prepared.engine_uses_lean_reads(bind):
        async with bind.connect() as connection:  # closing resets the isolation level
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            yield connection
        return
    held = held_connection(bind)
    if held is not None:  # an operation's batches: one connection kept between them
        connection = await held.take()
        reusable = False
        try:
            yield connection
            reusable = True
        finally:
            await held.give_back(connection, reusable=reusable)
        return
    connection = await checkout(bind)
    try:
        yield connection
    finally:
        # With no transaction, closing does no I/O (the pool's reset-on-return is a
        # rollback the driver skips), so no cancellation can cut it short: it needs
        # no task of its own, which `async with` would spend on every batch.
        await checkin(connection)


def operation_reads(sessionmaker: SessionMaker) -> AbstractAsyncContextManager[None]:
    """Around one operation's execution: its batches' lean reads keep one connection
    between them (loaders/held_connection.py); nothing changes for other reads."""
    bind = sessionmaker.kw.get("bind")
    if (
        not isinstance(bind, AsyncEngine)
        or bind.get_execution_options().get(READ_TRANSACTIONS, False)
        or not prepared.engine_uses_lean_reads(bind)
    ):
        return nullcontext()
    return holding_connection(bind)


async def _read_connection_of(session: AsyncSession) -> AsyncConnection:
    if session.get_bind().get_execution_options().get(READ_TRANSACTIONS, False):
        return await session.connection()
    return await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})


async def fetch(
    connection: AsyncConnection, statement: Statement, params: Mapping[str, Any]
) -> Sequence[Sequence[Any]]:
    """The rows of `statement` on `connection`, each read by position.

    On asyncpg they are asyncpg Records fetched through its prepared statements
    (loaders/prepared.py); elsewhere SQLAlchemy Rows.
    """
    if prepared.uses_lean_reads(connection):
        return await prepared.fetch(connection, statement, params)
    return (await connection.execute(statement, dict(params))).all()


async def fetch_all(
    sessionmaker: SessionMaker, statement: Statement, params: Mapping[str, Any]
) -> Sequence[Sequence[Any]]:
    """Run one statement on a read connection of its own and return its rows."""
    async with read_connection(sessionmaker) as connection:
        return await fetch(connection, statement, params)
