"""The seam metrics and tracing watch loader batches through (loaders/observer.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from loaders import Dialect, Loaders
from loaders.observer import OUTSIDE_LOADERS, current_loader, reset, run_as
from tests.conftest import Database
from tests.factories import Factory


class Recording:
    def __init__(self) -> None:
        self.batches: list[tuple[str, int]] = []
        self.open: list[str] = []

    @contextmanager
    def batch(self, loader: str, keys: int) -> Iterator[None]:
        self.batches.append((loader, keys))
        self.open.append(loader)
        try:
            yield
        finally:
            self.open.remove(loader)


async def test_each_batch_is_observed_with_its_loader_and_key_count(
    db: Database, dialect: Dialect
) -> None:
    factory = Factory(db.sessionmaker)
    users = [await factory.user() for _ in range(3)]
    category = await factory.category()
    product = await factory.product(category_id=category)
    observer = Recording()
    loaders = Loaders(sessionmaker=db.sessionmaker, dialect=dialect, observer=observer)

    await asyncio.gather(
        *(loaders.user_by_id.load(id_) for id_ in [*users, users[0]]),
        loaders.product_by_id.load(product),
        loaders.review_stats_by_product_id.load(product),
    )

    assert sorted(observer.batches) == [
        ("product_by_id", 1),
        ("review_stats_by_product_id", 1),
        ("user_by_id", 3),
    ]
    assert observer.open == []


async def test_statements_of_a_batch_know_their_loader(db: Database, dialect: Dialect) -> None:
    factory = Factory(db.sessionmaker)
    user = await factory.user()
    seen: list[str] = []

    def record(*_args: Any) -> None:
        seen.append(current_loader())

    event.listen(db.engine.sync_engine, "before_cursor_execute", record)
    try:
        loaders = Loaders(sessionmaker=db.sessionmaker, dialect=dialect)
        await loaders.user_by_id.load(user)
        await loaders.order_count_by_user_id.load((user, None))
        token = run_as("mutation")
        try:
            async with db.engine.connect() as connection:
                await connection.exec_driver_sql("SELECT 1")
        finally:
            reset(token)
        async with db.engine.connect() as connection:
            await connection.exec_driver_sql("SELECT 1")
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", record)

    assert seen == ["user_by_id", "order_count_by_user_id", "mutation", OUTSIDE_LOADERS]
