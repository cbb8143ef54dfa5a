"""What a batch function is, and how one runs its statement."""

from __future__ import annotations

from collections.abc import Coroutine, Hashable, Iterable, Sequence
from typing import Any, Protocol, TypeVar

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

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


async def fetch_all(
    sessionmaker: SessionMaker, statement: Statement, params: dict[str, Any]
) -> Sequence[Row[*tuple[Any, ...]]]:
    """Run one statement in a short session of its own and return its rows.

    Sibling fields resolve concurrently and an `AsyncSession` must never be
    shared between tasks, so every batch opens its own.
    """
    async with sessionmaker() as session:
        result = await session.execute(statement, params)
        return result.all()
