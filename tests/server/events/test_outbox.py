"""The outbox: each committed write records exactly its events, in its own transaction;
a write that fails records nothing; an event's data is what an ADMIN reads through
/graphql. Both backends, through the real HTTP endpoint."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest_asyncio
from sqlalchemy import func, select

from models import OutboxEvent
from resolvers.changes import announce
from schema.global_id import from_global_id, to_global_id
from tests.conftest import Api
from tests.factories import Factory

# What the events carry, as an ADMIN selects it through /graphql.
ORDER_FIELDS = (
    "id status totalCents createdAt customer { id } "
    "items { id quantity unitPriceCents product { id } }"
)
PRODUCT_FIELDS = "id sku name description priceCents active createdAt updatedAt category { id }"
REVIEW_FIELDS = "id rating body createdAt author { id } product { id }"
FIELDS = {"Order": ORDER_FIELDS, "Product": PRODUCT_FIELDS, "Review": REVIEW_FIELDS}


@dataclass
class Shop:
    api: Api
    admin: str
    customer: str
    customer_id: int
    category: int
    lamp: int
    chair: int


@pytest_asyncio.fixture
async def shop(api: Api, factory: Factory) -> AsyncIterator[Shop]:
    admin = await api.token("admin@example.com", role="admin")
    customer = await api.token("cus@example.com")
    me = (await api.data("{ viewer { id } }", token=customer))["viewer"]["id"]
    category = await factory.category(name="Home")
    lamp = await factory.product(name="Lamp", price_cents=1500, category_id=category)
    chair = await factory.product(name="Chair", price_cents=4000, category_id=category)
    yield Shop(api, admin, customer, from_global_id(me, field="id")[1], category, lamp, chair)


async def outbox(api: Api) -> list[OutboxEvent]:
    async with api.db.sessionmaker() as session:
        return list(await session.scalars(select(OutboxEvent).order_by(OutboxEvent.id)))


async def depth(api: Api) -> int:
    async with api.db.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(OutboxEvent)) or 0)


async def as_admin(shop: Shop, global_id: str) -> dict[str, Any]:
    type_name = from_global_id(global_id, field="id")[0]
    query = (
        f"query($id: ID!) {{ node(id: $id) {{ ... on {type_name} {{ {FIELDS[type_name]} }} }} }}"
    )
    data = await shop.api.data(query, {"id": global_id}, token=shop.admin)
    node: dict[str, Any] = data["node"]
    return node


PLACE = "mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { id } }"


async def place(shop: Shop, *lines: tuple[int, int], request_id: str | None = None) -> str:
    variables = {
        "input": {
            "lines": [{"productId": to_global_id("Product", p), "quantity": q} for p, q in lines]
        }
    }
    headers = {} if request_id is None else {"X-Request-ID": request_id}
    response = await shop.api.post(PLACE, variables, token=shop.customer, headers=headers)
    body = response.json()
    assert "errors" not in body, body
    order_id: str = body["data"]["placeOrder"]["id"]
    return order_id


async def test_each_write_records_exactly_its_events_with_the_data_an_admin_reads(
    shop: Shop,
) -> None:
    api = shop.api
    order = await place(shop, (shop.lamp, 2), (shop.chair, 1), request_id="req-place-1")
    await api.data(
        "mutation($id: ID!) { updateOrderStatus(id: $id, status: PAID) { id } }",
        {"id": order},
        token=shop.admin,
    )
    await api.data(
        "mutation($id: ID!) { cancelOrder(id: $id) { id } }", {"id": order}, token=shop.customer
    )
    review = (
        await api.data(
            'mutation($p: ID!) { addReview(input: {productId: $p, rating: 4, body: "Nice"}) '
            "{ id } }",
            {"p": to_global_id("Product", shop.lamp)},
            token=shop.customer,
        )
    )["addReview"]["id"]
    created = (
        await api.data(
            'mutation($c: ID!) { createProduct(input: {sku: "S-1", name: "Stool", '
            'description: "Oak", priceCents: 900, categoryId: $c}) { id } }',
            {"c": to_global_id("Category", shop.category)},
            token=shop.admin,
        )
    )["createProduct"]["id"]
    updated = (
        await api.data(
            "mutation($id: ID!) { updateProduct(id: $id, input: {priceCents: 1700, "
            'name: "Lamp II"}) { id } }',
            {"id": to_global_id("Product", shop.lamp)},
            token=shop.admin,
        )
    )["updateProduct"]["id"]

    rows = await outbox(api)
    assert [(row.type, row.entity_id) for row in rows] == [
        ("order.placed", order),
        ("order.status_changed", order),
        ("order.status_changed", order),
        ("review.added", review),
        ("product.created", created),
        ("product.updated", updated),
    ]
    assert len({row.event_id for row in rows}) == len(rows)
    assert rows[0].request_id == "req-place-1"
    assert all(row.request_id for row in rows)  # every request has an id
    order_id, user_id = from_global_id(order, field="id")[1], shop.customer_id
    assert set(rows[0].tags) == announce("placeOrder", order_id=order_id, user_id=user_id).tags
    assert (
        set(rows[5].tags)
        == announce(
            "updateProduct",
            product_id=shop.lamp,
            category_id=shop.category,
            old_category_id=shop.category,
        ).tags
    )
    # The data is the entity as an ADMIN reads it (the last event of each entity is
    # its current state).
    assert rows[0].payload["status"] == "PENDING"
    assert rows[1].payload["status"] == "PAID"
    assert len(rows[0].payload["items"]) == 2
    for row in (rows[2], rows[3], rows[4], rows[5]):
        assert row.payload == await as_admin(shop, row.entity_id), row.type
    assert {k: v for k, v in rows[0].payload.items() if k != "status"} == {
        k: v for k, v in (await as_admin(shop, order)).items() if k != "status"
    }


async def test_a_write_that_fails_records_nothing(shop: Shop, factory: Factory) -> None:
    api = shop.api
    await place(shop, (shop.lamp, 1))
    order = (await outbox(api))[0].entity_id
    retired = await factory.product(name="Old", active=False, category_id=shop.category)
    dear = await factory.product(name="Dear", price_cents=2**31 - 1, category_id=shop.category)
    sku = (
        'mutation($c: ID!) { createProduct(input: {sku: "DUP", name: "A", description: "",'
        " priceCents: 1, categoryId: $c}) { id } }"
    )
    category = {"c": to_global_id("Category", shop.category)}
    review = 'mutation($p: ID!) { addReview(input: {productId: $p, rating: 5, body: "x"}) { id } }'
    target = {"p": to_global_id("Product", shop.chair)}
    assert "errors" not in await api.query(sku, category, token=shop.admin)
    assert "errors" not in await api.query(review, target, token=shop.customer)
    before = await depth(api)

    def lines(product: int, quantity: int) -> dict[str, Any]:
        line = {"productId": to_global_id("Product", product), "quantity": quantity}
        return {"input": {"lines": [line]}}

    failures = [
        await api.query(PLACE, lines(dear, 2), token=shop.customer),  # total too large
        await api.query(PLACE, lines(retired, 1), token=shop.customer),
        await api.query(sku, category, token=shop.admin),  # a unique violation
        await api.query(review, target, token=shop.customer),  # another one
        await api.query(
            "mutation($id: ID!) { updateOrderStatus(id: $id, status: SHIPPED) { id } }",
            {"id": order},
            token=shop.admin,
        ),
    ]

    for body in failures:
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", body
    assert await depth(api) == before


async def test_a_failing_transaction_leaves_no_event(shop: Shop, monkeypatch: Any) -> None:
    """The write's last statement (the idempotency record) fails after its event was
    inserted: the event goes with the rollback."""
    import resolvers.ordering as ordering

    async def broken(*_: Any, **__: Any) -> None:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(ordering, "record_key", broken)
    before = await depth(shop.api)
    body = await shop.api.query(
        PLACE,
        {"input": {"lines": [{"productId": to_global_id("Product", shop.lamp), "quantity": 1}]}},
        token=shop.customer,
    )
    assert body["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR", body
    assert await depth(shop.api) == before


async def test_an_idempotent_replay_records_no_second_event(shop: Shop) -> None:
    headers = {"Idempotency-Key": "k-1"}
    variables = {
        "input": {"lines": [{"productId": to_global_id("Product", shop.lamp), "quantity": 1}]}
    }
    first = await shop.api.post(PLACE, variables, token=shop.customer, headers=headers)
    again = await shop.api.post(PLACE, variables, token=shop.customer, headers=headers)
    assert again.headers["idempotent-replayed"] == "true"
    assert first.json()["data"] == again.json()["data"]
    assert [row.type for row in await outbox(shop.api)] == ["order.placed"]


async def test_without_redis_the_server_relays_its_own_events(shop: Shop) -> None:
    """The embedded default: the relay runs inside the server and marks each row."""
    import asyncio

    assert shop.api.services.events is not None
    assert shop.api.services.events.loop is not None
    await place(shop, (shop.lamp, 1))
    for _ in range(200):
        rows = await outbox(shop.api)
        if rows and all(row.published_at is not None for row in rows):
            break
        await asyncio.sleep(0.02)
    assert rows
    assert all(row.published_at is not None for row in rows)
