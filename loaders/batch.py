"""What a batch function is, and how one runs its statement."""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterator, Coroutine, Hashable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

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


# Each engine's autocommit view (same pool), made once: `execution_options` builds a new
# engine object per call.
_autocommit_engines: weakref.WeakKeyDictionary[AsyncEngine, AsyncEngine] = (
    weakref.WeakKeyDictionary()
)


@asynccontextmanager
async def read_connection(sessionmaker: SessionMaker) -> AsyncIterator[AsyncConnection]:
    """A connection of its own, in autocommit mode.

    Sibling fields resolve concurrently and a connection must never be shared
    between tasks, so every batch checks out its own. Reads need no
    transaction: autocommit spares the BEGIN and ROLLBACK round trips that
    would otherwise wrap every batch's one statement.

    A plain sessionmaker (one engine, the stock session class) lends its engine's
    connection directly: an `AsyncSession` around one read only added its
    transaction bookkeeping and a third greenlet hop per batch (bench/request_overhead.py).
    Any other (a session class or binds of its own, e.g. routing) is used as is.
    """
    engine = _plain_engine(sessionmaker)
    if engine is None:
        async with sessionmaker() as session:
            yield await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        return
    autocommit = _autocommit_engines.get(engine)
    if autocommit is None:
        autocommit = _autocommit_engines[engine] = engine.execution_options(
            isolation_level="AUTOCOMMIT"
        )
    async with autocommit.connect() as connection:
        yield connection


def _plain_engine(sessionmaker: SessionMaker) -> AsyncEngine | None:
    """The engine `sessionmaker`'s sessions are bound to, when that is all they do."""
    bind = sessionmaker.kw.get("bind")
    plain = (
        sessionmaker.class_ is AsyncSession
        and isinstance(bind, AsyncEngine)
        and not sessionmaker.kw.get("binds")
        and "sync_session_class" not in sessionmaker.kw
    )
    return bind if plain else None


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
