"""What a batch function is, and how one runs its statement."""

from __future__ import annotations

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


# Where an engine keeps its autocommit view (same pool), made once: `execution_options`
# builds a new engine object per call. On the engine itself rather than in a weak
# mapping, whose values (holding their engine) would keep every engine alive.
_AUTOCOMMIT_VIEW = "_storefront_autocommit_view"


@asynccontextmanager
async def read_connection(sessionmaker: SessionMaker) -> AsyncIterator[AsyncConnection]:
    """A connection of its own, in autocommit mode.

    Sibling fields resolve concurrently and a connection must never be shared
    between tasks, so every batch checks out its own. Reads need no
    transaction: autocommit spares the BEGIN and ROLLBACK round trips that
    would otherwise wrap every batch's one statement.

    A plain sessionmaker (one engine, the stock session class) lends its engine's
    connection directly: an `AsyncSession` around one read only added its
    transaction bookkeeping to every batch (bench/request_overhead.py: 5,681 -> 5,094
    Python calls per product page).
    Any other (a session class or binds of its own, e.g. routing) is used as is.
    """
    engine = _plain_engine(sessionmaker)
    if engine is None:
        async with sessionmaker() as session:
            yield await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        return
    async with _autocommit(engine).connect() as connection:
        yield connection


def _autocommit(engine: AsyncEngine) -> AsyncEngine:
    sync = engine.sync_engine
    view: AsyncEngine | None = sync.__dict__.get(_AUTOCOMMIT_VIEW)
    if view is None:
        view = engine.execution_options(isolation_level="AUTOCOMMIT")
        setattr(sync, _AUTOCOMMIT_VIEW, view)
    return view


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
