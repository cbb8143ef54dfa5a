"""Helpers for the loader tests: a `Loaders` over the test database and bulk inserts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import insert

from loaders import Dialect, Loaders
from tests.conftest import Database


@pytest.fixture
def dialect(db: Database) -> Dialect:
    assert db.backend in ("postgresql", "sqlite")
    return "postgresql" if db.backend == "postgresql" else "sqlite"


@pytest.fixture
def loaders(db: Database, dialect: Dialect) -> Loaders:
    return Loaders(sessionmaker=db.sessionmaker, dialect=dialect)


async def insert_rows(db: Database, model: Any, rows: list[dict[str, Any]]) -> list[int]:
    """Insert `rows` in one statement and return their ids, in the order of `rows`."""
    async with db.sessionmaker.begin() as session:
        statement = insert(model).returning(model.id, sort_by_parameter_order=True)
        result = await session.execute(statement, rows)
        return [int(id_) for id_ in result.scalars()]


@pytest.fixture
def db_loaders(db: Database, dialect: Dialect) -> Callable[[], Loaders]:
    """Builds a fresh `Loaders` (a new request) on each call."""
    return lambda: Loaders(sessionmaker=db.sessionmaker, dialect=dialect)
