"""Idempotency-Key through HTTP on both backends: replays, reuse, scope, expiry, races."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import func, select, text, update

from models import IdempotencyKey, Order, utcnow
from resolvers.changes import Changes
from schema.global_id import from_global_id, to_global_id
from tests.conftest import Api, Database, snapshot
from tests.factories import Factory

KEY = "Idempotency-Key"
PLACE = """mutation Place($input: PlaceOrderInput!) {
  placeOrder(input: $input) { id status totalCents items { quantity product { name } } }
}"""


@dataclass
class Shop:
    api: Api
    customer: str
    other: str
    admin: str
    lamp: int
    category: int
    announced: list[Changes]

    def lines(self, quantity: int = 1) -> dict[str, Any]:
        line = {"productId": to_global_id("Product", self.lamp), "quantity": quantity}
        return {"input": {"lines": [line]}}

    async def place(self, key: str | None, quantity: int = 1, token: str | None = None) -> Any:
        headers = {} if key is None else {KEY: key}
        return await self.api.post(
            PLACE, self.lines(quantity), token=token or self.customer, headers=headers
        )


@pytest_asyncio.fixture
async def shop(api: Api, factory: Factory) -> AsyncIterator[Shop]:
    customer = await api.token("cus@example.com")
    other = await api.token("other@example.com")
    admin = await api.token("admin@example.com", role="admin")
    category = await factory.category(name="Home")
    lamp = await factory.product(name="Lamp", price_cents=1500, category_id=category)
    announced: list[Changes] = []

    async def record(changes: Changes) -> None:
        announced.append(changes)

    unsubscribe = api.services.change_feed.subscribe(record)
    yield Shop(api, customer, other, admin, lamp, category, announced)
    unsubscribe()


async def count(db: Database, model: Any) -> int:
    async with db.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


def without_cost(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "extensions"}


async def test_a_retry_replays_the_stored_answer_and_writes_nothing(shop: Shop) -> None:
    first = await shop.place("order-1")
    assert first.status_code == 200
    assert "errors" not in first.json()
    assert "idempotent-replayed" not in first.headers
    assert len(shop.announced) == 1
    before = await snapshot(shop.api.db)

    again = await shop.place("order-1")

    assert again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert without_cost(again.json()) == without_cost(first.json())
    assert again.json()["extensions"]["cost"]["requestedQueryCost"] > 0
    assert await snapshot(shop.api.db) == before
    assert len(shop.announced) == 1  # nothing announced again
    assert await count(shop.api.db, Order) == 1


async def test_whitespace_comments_and_variable_order_do_not_change_the_request(
    shop: Shop,
) -> None:
    first = await shop.place("order-1")
    reformatted = "# the same\n" + " ".join(PLACE.split())
    line = {"quantity": 1, "productId": to_global_id("Product", shop.lamp)}
    again = await shop.api.post(
        reformatted, {"input": {"lines": [line]}}, token=shop.customer, headers={KEY: "order-1"}
    )
    assert again.headers["idempotent-replayed"] == "true"
    assert without_cost(again.json()) == without_cost(first.json())
    assert await count(shop.api.db, Order) == 1


@pytest.mark.parametrize("accept", ["application/json", "application/graphql-response+json"])
async def test_the_same_key_with_another_request_is_refused(shop: Shop, accept: str) -> None:
    await shop.place("order-1", quantity=1)
    before = await snapshot(shop.api.db)

    response = await shop.api.post(
        PLACE, shop.lines(2), token=shop.customer, headers={KEY: "order-1", "Accept": accept}
    )

    assert response.status_code == 400
    body = response.json()
    assert "data" not in body
    assert body["errors"][0]["extensions"] == {
        "code": "IDEMPOTENCY_KEY_REUSED",
        "header": "Idempotency-Key",
    }
    assert await snapshot(shop.api.db) == before
    assert len(shop.announced) == 1


async def test_keys_are_scoped_per_user(shop: Shop) -> None:
    mine = await shop.place("shared-key")
    theirs = await shop.place("shared-key", quantity=3, token=shop.other)
    assert "idempotent-replayed" not in theirs.headers
    assert mine.json()["data"]["placeOrder"]["id"] != theirs.json()["data"]["placeOrder"]["id"]
    assert await count(shop.api.db, Order) == 2
    assert await count(shop.api.db, IdempotencyKey) == 2


async def test_an_expired_key_runs_again(shop: Shop) -> None:
    first = await shop.place("order-1")
    async with shop.api.db.sessionmaker.begin() as session:
        await session.execute(
            update(IdempotencyKey).values(created_at=utcnow() - timedelta(hours=24, seconds=1))
        )

    again = await shop.place("order-1", quantity=2)  # even another body: the old key is gone

    assert "idempotent-replayed" not in again.headers
    new_id = again.json()["data"]["placeOrder"]["id"]
    assert new_id != first.json()["data"]["placeOrder"]["id"]
    assert await count(shop.api.db, Order) == 2
    async with shop.api.db.sessionmaker() as session:
        rows = (await session.execute(select(IdempotencyKey.result_id))).scalars().all()
    assert rows == [from_global_id(new_id, field="id")[1]]


async def test_without_a_key_every_request_runs(shop: Shop) -> None:
    first = await shop.place(None)
    second = await shop.place(None)
    assert first.json()["data"]["placeOrder"]["id"] != second.json()["data"]["placeOrder"]["id"]
    assert await count(shop.api.db, Order) == 2
    assert await count(shop.api.db, IdempotencyKey) == 0


async def test_a_failed_write_keeps_no_key_so_a_corrected_retry_runs(shop: Shop) -> None:
    failed = await shop.place("order-1", quantity=0)
    assert failed.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert await count(shop.api.db, IdempotencyKey) == 0

    corrected = await shop.place("order-1", quantity=1)

    assert "errors" not in corrected.json()
    assert "idempotent-replayed" not in corrected.headers
    assert await count(shop.api.db, Order) == 1


@pytest.mark.parametrize("key", ["", "x" * 256, "tab\there", "caf\u00e9"])
async def test_a_malformed_key_is_refused(shop: Shop, key: str) -> None:
    response = await shop.api.post(
        PLACE, shop.lines(), token=shop.customer, headers={KEY: key.encode("utf-8")}
    )
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "header": "Idempotency-Key"}
    assert "Idempotency-Key" in error["message"]
    assert await count(shop.api.db, Order) == 0


async def test_a_key_of_255_printable_characters_is_accepted(shop: Shop) -> None:
    key = ("a ~" * 85)[:255]
    first = await shop.place(key)
    again = await shop.place(key)
    assert again.headers["idempotent-replayed"] == "true"
    assert without_cost(again.json()) == without_cost(first.json())


async def test_a_key_covers_one_mutation_field(shop: Shop) -> None:
    two = """mutation($input: PlaceOrderInput!) {
      a: placeOrder(input: $input) { id } ...More }
    fragment More on Mutation { b: placeOrder(input: $input) { id } }"""
    response = await shop.api.post(two, shop.lines(), token=shop.customer, headers={KEY: "order-1"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert await count(shop.api.db, Order) == 0

    with_typename = PLACE.replace("placeOrder(", "__typename placeOrder(")
    ok = await shop.api.post(
        with_typename, shop.lines(), token=shop.customer, headers={KEY: "order-1"}
    )
    assert "errors" not in ok.json()


async def test_a_key_on_a_query_is_ignored(shop: Shop) -> None:
    body = await shop.api.query("{ viewer { email } }", token=shop.customer, headers={KEY: ""})
    assert body["data"] == {"viewer": {"email": "cus@example.com"}}


async def test_an_anonymous_mutation_with_a_key_fails_as_without_one(shop: Shop) -> None:
    response = await shop.api.client.post(
        "/graphql", json={"query": PLACE, "variables": shop.lines()}, headers={KEY: "k"}
    )
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert await count(shop.api.db, IdempotencyKey) == 0


async def test_a_batch_cannot_carry_a_key(shop: Shop) -> None:
    response = await shop.api.client.post(
        "/graphql",
        json=[{"query": PLACE, "variables": shop.lines()}],
        headers={KEY: "k", "Authorization": f"Bearer {shop.customer}"},
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["header"] == "Idempotency-Key"
    assert await count(shop.api.db, Order) == 0


async def test_a_lost_answer_is_rebuilt_from_the_recorded_write(shop: Shop) -> None:
    """The commit went through but its answer was never stored (the connection died):
    the retry answers with the recorded order, and republishes its changes."""
    first = await shop.place("order-1")
    me = (await shop.api.data("{ viewer { id } }", token=shop.customer))["viewer"]["id"]
    user_id = from_global_id(me, field="id")[1]
    async with shop.api.db.sessionmaker.begin() as session:
        await session.execute(update(IdempotencyKey).values(response=None))
    shop.announced.clear()

    again = await shop.place("order-1")

    assert again.headers["idempotent-replayed"] == "true"
    assert without_cost(again.json()) == without_cost(first.json())
    assert await count(shop.api.db, Order) == 1
    order_id = from_global_id(first.json()["data"]["placeOrder"]["id"], field="id")[1]
    assert [sorted(c.tags) for c in shop.announced] == [
        sorted(
            {f"Order:{order_id}", f"User:{user_id}", "Order:list", f"Order:list:user_id={user_id}"}
        )
    ]
    async with shop.api.db.sessionmaker() as session:
        stored = await session.scalar(select(IdempotencyKey.response))
    assert stored is not None  # the rebuilt answer is kept for later replays


MUTATIONS = {
    "cancelOrder": (
        "mutation($id: ID!) { cancelOrder(id: $id) { id status } }",
        "customer",
        lambda ids: {"id": to_global_id("Order", ids["order"])},
    ),
    "updateOrderStatus": (
        "mutation($id: ID!) { updateOrderStatus(id: $id, status: PAID) { id status } }",
        "admin",
        lambda ids: {"id": to_global_id("Order", ids["order"])},
    ),
    "addReview": (
        'mutation($p: ID!) { addReview(input: {productId: $p, rating: 5, body: "Good"}) '
        "{ id rating } }",
        "customer",
        lambda ids: {"p": to_global_id("Product", ids["product"])},
    ),
    "createProduct": (
        'mutation($c: ID!) { createProduct(input: {sku: "N-1", name: "New", '
        'description: "", priceCents: 5, categoryId: $c}) { id sku } }',
        "admin",
        lambda ids: {"c": to_global_id("Category", ids["category"])},
    ),
    "updateProduct": (
        "mutation($id: ID!) { updateProduct(id: $id, input: {priceCents: 7}) "
        "{ id priceCents updatedAt } }",
        "admin",
        lambda ids: {"id": to_global_id("Product", ids["product"])},
    ),
}


@pytest.mark.parametrize("name", sorted(MUTATIONS))
async def test_every_mutation_runs_once_per_key(shop: Shop, factory: Factory, name: str) -> None:
    query, who, variables_of = MUTATIONS[name]
    customer_id = from_global_id(
        (await shop.api.data("{ viewer { id } }", token=shop.customer))["viewer"]["id"],
        field="id",
    )[1]
    ids = {
        "order": await factory.order(user_id=customer_id, status="pending"),
        "product": shop.lamp,
        "category": shop.category,
    }
    token = shop.customer if who == "customer" else shop.admin
    variables = variables_of(ids)
    first = await shop.api.post(query, variables, token=token, headers={KEY: f"{name}-1"})
    assert "errors" not in first.json(), first.json()
    before = await snapshot(shop.api.db)
    # Run again without the key, this would fail (taken sku, second review, illegal
    # transition) or write again (updatedAt).
    again = await shop.api.post(query, variables, token=token, headers={KEY: f"{name}-1"})

    assert again.headers["idempotent-replayed"] == "true"
    assert without_cost(again.json()) == without_cost(first.json())
    assert await snapshot(shop.api.db) == before
    assert len(shop.announced) == 1


async def _wait_for_blocked(db: Database, n: int) -> None:
    """Until `n` statements wait on a lock (PostgreSQL)."""
    for _ in range(500):
        async with db.engine.connect() as conn:
            waiting = await conn.scalar(text("SELECT count(*) FROM pg_locks WHERE NOT granted"))
        if waiting >= n:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the requests never blocked")


RACES = {
    "placeOrder": (PLACE, "customer", lambda shop: shop.lines()),
    # Without the key claimed first, the loser would fail on the winner's review
    # ("already reviewed") or sku instead of being told to retry.
    "addReview": (MUTATIONS["addReview"][0], "customer", lambda s: {"p": gid(s.lamp)}),
    "createProduct": (MUTATIONS["createProduct"][0], "admin", lambda s: {"c": cid(s.category)}),
}


def gid(product: int) -> str:
    return to_global_id("Product", product)


def cid(category: int) -> str:
    return to_global_id("Category", category)


@pytest.mark.parametrize("name", sorted(RACES))
async def test_two_concurrent_requests_with_one_key_write_once(shop: Shop, name: str) -> None:
    query, who, variables_of = RACES[name]
    token = shop.customer if who == "customer" else shop.admin
    db = shop.api.db
    before = await snapshot(db)

    async def send() -> Any:
        return await shop.api.post(query, variables_of(shop), token=token, headers={KEY: "race"})

    if db.backend == "postgresql":
        # Inserts into idempotency_keys wait until both requests are past their key
        # lookup and inside their transactions: the key's unique row decides.
        async with db.engine.connect() as conn:
            await conn.execute(text("LOCK TABLE idempotency_keys IN EXCLUSIVE MODE"))
            both = asyncio.gather(send(), send())
            await _wait_for_blocked(db, 2)
            await conn.rollback()
            answers = await both
    else:
        answers = await asyncio.gather(send(), send())

    after = await snapshot(db)
    written = {t: len(after[t]) - len(before[t]) for t in after if after[t] != before[t]}
    assert written.pop("idempotency_keys") == 1
    assert set(written.values()) == {1}  # one order (and its item), review or product
    bodies = [a.json() for a in answers]
    won = [b for a, b in zip(answers, bodies, strict=True) if a.status_code == 200]
    assert won
    assert "errors" not in won[0]
    field = next(iter(won[0]["data"]))
    lost = [(a, b) for a, b in zip(answers, bodies, strict=True) if a.status_code != 200]
    if db.backend == "postgresql":
        assert len(lost) == 1
    for response, body in lost:
        assert response.status_code == 409
        assert response.headers["retry-after"] == "1"
        assert body["data"] is None
        assert body["errors"][0]["extensions"]["code"] == "IDEMPOTENCY_KEY_IN_PROGRESS"
    for body in won[1:]:  # SQLite may serialise them: the second then replays
        assert body["data"][field]["id"] == won[0]["data"][field]["id"]
    retry = await send()
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.json()["data"] == won[0]["data"]


async def test_purge_deletes_only_expired_keys(shop: Shop) -> None:
    await shop.place("old")
    await shop.place("new")
    async with shop.api.db.sessionmaker.begin() as session:
        await session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.key == "old")
            .values(created_at=utcnow() - timedelta(hours=25))
        )
    env = {**os.environ, "DATABASE_URL": shop.api.db.url, "LOG_LEVEL": "warning"}
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "server.cli", "purge-idempotency-keys"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Deleted 1 expired idempotency keys." in result.stdout
    async with shop.api.db.sessionmaker() as session:
        keys = (await session.execute(select(IdempotencyKey.key))).scalars().all()
    assert keys == ["new"]
