from __future__ import annotations

import asyncio

import pytest

from loaders import Loaders
from models import Category, OrderItem
from tests.conftest import Database
from tests.factories import Factory
from tests.loaders.conftest import insert_rows

MISSING = 10**9


@pytest.mark.parametrize("n", [5, 20])
async def test_items_by_order_id_in_insertion_order(
    db: Database, factory: Factory, loaders: Loaders, n: int
) -> None:
    user_id = await factory.user()
    products = [await factory.product() for _ in range(3)]
    orders = [await factory.order(user_id=user_id) for _ in range(n)]
    # Order i gets i % 4 items; rows of different orders interleave on insert.
    rows = [
        {
            "order_id": order_id,
            "product_id": products[(i + j) % 3],
            "quantity": j + 1,
            "unit_price_cents": 100 * (j + 1),
        }
        for j in range(3)
        for i, order_id in enumerate(orders)
        if j < i % 4
    ]
    item_ids = await insert_rows(db, OrderItem, rows)
    expected = {order_id: [] for order_id in orders}
    for item_id, row in zip(item_ids, rows, strict=True):
        expected[row["order_id"]].append(item_id)
    keys = [*reversed(orders), MISSING]
    db.statements.clear()

    results = await asyncio.gather(*(loaders.items_by_order_id.load(key) for key in keys))

    assert len(db.statements) == 1
    assert results[-1] == []
    for order_id, items in zip(keys[:-1], results[:-1], strict=True):
        assert [item.id for item in items] == expected[order_id]
        assert all(item.order_id == order_id for item in items)
    assert any(len(items) == 3 for items in results)


@pytest.mark.parametrize("n", [5, 20])
async def test_children_by_category_id_by_name_then_id(
    db: Database, loaders: Loaders, n: int
) -> None:
    roots = await insert_rows(db, Category, [{"name": f"root {i}"} for i in range(n)])
    names = ["zeta", "alpha", "mid", "alpha"]
    rows = [
        {"name": names[j], "parent_id": root}
        for j in range(len(names))
        for i, root in enumerate(roots)
        if j < i % 5
    ]
    child_ids = await insert_rows(db, Category, rows)
    expected: dict[int, list[tuple[str, int]]] = {root: [] for root in roots}
    for child_id, row in zip(child_ids, rows, strict=True):
        expected[row["parent_id"]].append((row["name"], child_id))
    db.statements.clear()

    results = await loaders.children_by_category_id.load_many([*roots, MISSING])

    assert len(db.statements) == 1
    assert results[-1] == []
    for root, children in zip(roots, results[:-1], strict=True):
        assert [(c.name, c.id) for c in children] == sorted(expected[root])
        assert all(c.parent_id == root for c in children)
