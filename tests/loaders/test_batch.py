"""read_connection: a plain sessionmaker lends its engine's connection; any other is used."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from loaders.batch import fetch_all, read_connection
from models import User
from tests.conftest import Database
from tests.factories import at
from tests.loaders.conftest import insert_rows


class CountedSession(AsyncSession):
    """A session class of its own, as a routing sessionmaker would have."""

    opened = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        CountedSession.opened += 1


async def test_a_plain_sessionmaker_reads_in_autocommit_on_its_engine(db: Database) -> None:
    async with read_connection(db.sessionmaker) as connection:
        assert connection.engine.sync_engine.pool is db.engine.sync_engine.pool
        assert connection.sync_connection is not None
        options = connection.sync_connection.get_execution_options()
        assert options["isolation_level"] == "AUTOCOMMIT"
    async with read_connection(db.sessionmaker) as again:
        assert again.engine is connection.engine  # the autocommit view is made once


async def test_a_sessionmaker_of_its_own_is_used_as_is(db: Database) -> None:
    (user_id,) = await insert_rows(
        db, User, [{"email": "one@example.com", "name": "one", "created_at": at(1)}]
    )
    own: async_sessionmaker[AsyncSession] = async_sessionmaker(
        db.engine, class_=CountedSession, expire_on_commit=False
    )
    before = CountedSession.opened
    rows = await fetch_all(own, select(User.id, User.name).where(User.id == user_id), {})
    assert [tuple(row) for row in rows] == [(user_id, "one")]
    assert CountedSession.opened == before + 1
    assert db.statements[-1].lstrip().upper().startswith("SELECT")
