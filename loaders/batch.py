"""What a batch function is, and how one runs its statement."""

from __future__ import annotations

from collections.abc import AsyncIterator, Coroutine, Hashable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from loaders import prepared
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
    """A connection of a short session of its own, in autocommit mode.

    Sibling fields resolve concurrently and an `AsyncSession` must never be
    shared between tasks, so every batch opens its own. Reads need no
    transaction: autocommit spares the BEGIN and ROLLBACK round trips that
    would otherwise wrap every batch's one statement (unless the engine asks
    for them, READ_TRANSACTIONS).
    """
    async with sessionmaker() as session:
        if session.get_bind().get_execution_options().get(READ_TRANSACTIONS, False):
            yield await session.connection()
        else:
            yield await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})


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
