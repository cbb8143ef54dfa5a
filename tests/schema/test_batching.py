"""No N+1: the same number of statements for 5 parents as for 50, one per level."""

from __future__ import annotations

import random
from typing import Any

import pytest

from schema.compiled.compare import shadowing
from schema.global_id import to_global_id
from tests.conftest import Api
from tests.factories import Factory, at

DASHBOARD = """query($n: Int!) { orders(first: $n) { edges { node {
  customer { name }
  items { quantity product { name averageRating category { name } } }
} } } }"""

CATALOG = """query($n: Int!) { products(first: $n) { nodes {
  reviewCount averageRating category { name }
  reviews(first: 3) { nodes { rating author { name } } }
} } }"""

USER_ORDERS = """query($id: ID!) { user(id: $id) { orders(first: 10) { nodes {
  items { product { name } }
} } } }"""


async def _shop(factory: Factory, *, customers: int, orders: int, products: int) -> list[int]:
    rng = random.Random(7)
    categories = [await factory.category() for _ in range(4)]
    product_ids = [
        await factory.product(category_id=rng.choice(categories)) for _ in range(products)
    ]
    user_ids = [await factory.user() for _ in range(customers)]
    for i, product in enumerate(product_ids):
        for user in rng.sample(user_ids, k=min(len(user_ids), 1 + i % 5)):
            await factory.review(product_id=product, user_id=user, rating=rng.randint(1, 5))
    for _ in range(orders):
        lines = [(p, rng.randint(1, 3), 100) for p in rng.sample(product_ids, k=3)]
        await factory.order(user_id=rng.choice(user_ids), items=lines)
    return user_ids


async def _statements(api: Api, query: str, variables: dict[str, object], token: str | None) -> int:
    api.statements.clear()
    data = await api.data(query, variables, token=token)
    assert data
    return len(api.statements)


async def test_order_dashboard_statement_count_is_independent_of_n(
    api: Api, factory: Factory
) -> None:
    await _shop(factory, customers=10, orders=50, products=30)
    admin = await api.token("admin@example.com", role="admin")
    first = await _statements(api, DASHBOARD, {"n": 5}, admin)
    small = await _statements(api, DASHBOARD, {"n": 5}, admin)
    large = await _statements(api, DASHBOARD, {"n": 50}, admin)
    # root + customer + items + product + rating + category; the token is looked
    # up by the first request only (AUTH_CACHE_SECONDS).
    assert (first, small, large) == (7, 6, 6), api.statements


async def test_catalog_statement_count_is_independent_of_n(api: Api, factory: Factory) -> None:
    await _shop(factory, customers=8, orders=0, products=60)
    small = await _statements(api, CATALOG, {"n": 5}, None)
    large = await _statements(api, CATALOG, {"n": 50}, None)
    # root + review stats (count and average together) + category + reviews + author.
    assert small == large == 5, api.statements


async def test_user_orders_statement_count_is_independent_of_n(api: Api, factory: Factory) -> None:
    admin = await api.token("admin@example.com", role="admin")
    product_ids = [await factory.product() for _ in range(12)]
    few = await factory.user()
    many = await factory.user()
    for user, count in ((few, 2), (many, 10)):
        for i in range(count):
            await factory.order(
                user_id=user, items=[(product_ids[i], 1, 1), (product_ids[i + 1], 1, 1)]
            )
    await api.data("{ viewer { id } }", token=admin)  # the token is now cached
    counts = [
        await _statements(api, USER_ORDERS, {"id": to_global_id("User", user)}, admin)
        for user in (few, many)
    ]
    # user + orders page + items + products.
    assert counts == [4, 4], api.statements


@pytest.mark.parametrize("first", [1, 3])
async def test_nested_pages_are_per_parent(api: Api, factory: Factory, first: int) -> None:
    users = [await factory.user() for _ in range(6)]
    products = [await factory.product() for _ in range(5)]
    for p_index, product in enumerate(products):
        for u_index, user in enumerate(users[: p_index + 1]):
            await factory.review(
                product_id=product, user_id=user, created_at=at(10 * u_index + p_index)
            )
    batched = await api.data(
        "query($n: Int!) { products(first: 10) { nodes { id reviews(first: $n) {"
        " totalCount nodes { id } pageInfo { hasNextPage endCursor } } } } }",
        {"n": first},
    )
    for node in batched["products"]["nodes"]:
        alone = await api.data(
            "query($id: ID!, $n: Int!) { product(id: $id) { reviews(first: $n) {"
            " totalCount nodes { id } pageInfo { hasNextPage endCursor } } } }",
            {"id": node["id"], "n": first},
        )
        assert node["reviews"] == alone["product"]["reviews"]
        assert len(node["reviews"]["nodes"]) == min(first, node["reviews"]["totalCount"])
        assert node["reviews"]["pageInfo"]["hasNextPage"] is (node["reviews"]["totalCount"] > first)


PRODUCT_PAGE = """query($id: ID!) { product(id: $id) {
  name averageRating reviewCount category { name }
  reviews(first: 10) { nodes { rating author { name } } }
} }"""


async def test_a_level_s_batches_start_no_task_but_for_the_concurrent_ones(
    api: Api, factory: Factory
) -> None:
    """The compiled executor runs each level's batches itself: the first in the
    operation's own task, one task for each other loader of the level; only the loads
    of resolvers (the product, its page of reviews) start a task of their own."""
    import asyncio

    category = await factory.category()
    product = await factory.product(category_id=category)
    for _ in range(3):
        await factory.review(product_id=product, user_id=await factory.user())
    variables = {"id": to_global_id("Product", product)}
    await api.data(PRODUCT_PAGE, variables)  # warm: the viewer and schema caches

    loop = asyncio.get_running_loop()
    batch_tasks: list[list[Any]] = []

    def counting(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        # Not the tests' shadow run on graphql-core (tests/conftest.py), which compares.
        name = getattr(coro, "__qualname__", "")
        if name == "IsolatedDataLoader._dispatch" and not shadowing.get():
            batch_tasks.append([entry.key for entry in coro.cr_frame.f_locals["queued"]])
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(counting)
    try:
        api.statements.clear()
        data = await api.data(PRODUCT_PAGE, variables)
    finally:
        loop.set_task_factory(None)
    assert len(data["product"]["reviews"]["nodes"]) == 3
    # product; category and rating side by side, reviews; their authors
    assert len(api.statements) == 5
    # The product's and the reviews page's loads, and one of level two's two loaders.
    assert len(batch_tasks) == 3, batch_tasks
