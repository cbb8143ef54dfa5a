"""The six mutations through HTTP: success, every error path, no trace on failure,
the exact change announcements, and coherence of later reads."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio

from resolvers.changes import Changes
from schema.global_id import from_global_id, to_global_id
from tests.conftest import Api, snapshot
from tests.factories import Factory


@dataclass
class Shop:
    api: Api
    admin: str
    customer: str
    customer_id: int
    other: str
    category: int
    lamp: int
    chair: int
    retired: int
    announced: list[Changes]


@pytest_asyncio.fixture
async def shop(api: Api, factory: Factory) -> AsyncIterator[Shop]:
    admin = await api.token("admin@example.com", role="admin")
    customer = await api.token("cus@example.com")
    other = await api.token("other@example.com")
    me = (await api.data("{ viewer { id } }", token=customer))["viewer"]["id"]
    category = await factory.category(name="Home")
    lamp = await factory.product(name="Lamp", price_cents=1500, category_id=category)
    chair = await factory.product(name="Chair", price_cents=4000, category_id=category)
    retired = await factory.product(name="Old", active=False, category_id=category)
    announced: list[Changes] = []

    async def record(changes: Changes) -> None:
        announced.append(changes)

    unsubscribe = api.services.change_feed.subscribe(record)
    yield Shop(
        api,
        admin,
        customer,
        from_global_id(me, field="id")[1],
        other,
        category,
        lamp,
        chair,
        retired,
        announced,
    )
    unsubscribe()


def gid(type_name: str, id_: int) -> str:
    return to_global_id(type_name, id_)


async def expect_error(
    shop: Shop,
    query: str,
    variables: dict[str, Any],
    token: str | None,
    code: str,
    field: str | None = None,
) -> dict[str, Any]:
    """Runs a failing mutation and checks its error, that nothing was written and nothing
    announced."""
    before = await snapshot(shop.api.db)
    body = await shop.api.query(query, variables, token=token)
    assert body["data"] is None, body
    error = body["errors"][0]
    assert error["extensions"]["code"] == code, error
    if field is not None:
        assert error["extensions"]["field"] == field, error
    assert await snapshot(shop.api.db) == before
    assert shop.announced == []
    return dict(error)


PLACE = """mutation($input: PlaceOrderInput!) { placeOrder(input: $input) {
  id status totalCents customer { email } items { quantity unitPriceCents product { name } }
} }"""


def lines(*pairs: tuple[int, int]) -> dict[str, Any]:
    return {"input": {"lines": [{"productId": gid("Product", p), "quantity": q} for p, q in pairs]}}


async def test_place_order(shop: Shop) -> None:
    data = await shop.api.data(PLACE, lines((shop.lamp, 2), (shop.chair, 1)), token=shop.customer)
    order = data["placeOrder"]
    assert order["status"] == "PENDING"
    assert order["totalCents"] == 2 * 1500 + 4000
    assert order["customer"]["email"] == "cus@example.com"
    assert [(i["quantity"], i["unitPriceCents"], i["product"]["name"]) for i in order["items"]] == [
        (2, 1500, "Lamp"),
        (1, 4000, "Chair"),
    ]
    order_id = from_global_id(order["id"], field="id")[1]
    assert shop.announced == [
        Changes(
            frozenset({f"Order:{order_id}", f"User:{shop.customer_id}"}),
            frozenset({"Order:list", f"Order:list:user_id={shop.customer_id}"}),
        )
    ]
    # The next request sees it.
    later = await shop.api.data(
        "{ viewer { orderCount orders(first: 1) { nodes { id totalCents } } } }",
        token=shop.customer,
    )
    assert later["viewer"]["orderCount"] == 1
    assert later["viewer"]["orders"]["nodes"] == [{"id": order["id"], "totalCents": 7000}]


async def test_place_order_copies_the_price_of_the_moment(shop: Shop) -> None:
    first = await shop.api.data(PLACE, lines((shop.lamp, 1)), token=shop.customer)
    await shop.api.data(
        "mutation($id: ID!) { updateProduct(id: $id, input: {priceCents: 99}) { id } }",
        {"id": gid("Product", shop.lamp)},
        token=shop.admin,
    )
    second = await shop.api.data(PLACE, lines((shop.lamp, 1)), token=shop.customer)
    assert first["placeOrder"]["items"][0]["unitPriceCents"] == 1500
    assert second["placeOrder"]["items"][0]["unitPriceCents"] == 99
    assert second["placeOrder"]["totalCents"] == 99


@pytest.mark.parametrize(
    ("make_lines", "field"),
    [
        (lambda s: lines(), "input.lines"),
        (lambda s: lines(*[(s.lamp + 1000 + i, 1) for i in range(101)]), "input.lines"),
        (lambda s: lines((s.lamp, 0)), "input.lines[0].quantity"),
        (lambda s: lines((s.lamp, 1), (s.chair, 1001)), "input.lines[1].quantity"),
        (lambda s: lines((s.lamp, 1), (s.chair, 1), (s.lamp, 2)), "input.lines[2].productId"),
        (lambda s: lines((s.lamp, 1), (s.retired, 1)), "input.lines[1].productId"),
        (lambda s: lines((s.chair, 1), (10**9, 1)), "input.lines[1].productId"),
        (
            lambda s: {
                "input": {"lines": [{"productId": gid("Category", s.category), "quantity": 1}]}
            },
            "input.lines[0].productId",
        ),
    ],
)
async def test_place_order_rejects_bad_input(shop: Shop, make_lines: Any, field: str) -> None:
    await expect_error(shop, PLACE, make_lines(shop), shop.customer, "BAD_USER_INPUT", field)


async def test_place_order_refuses_a_total_beyond_an_int(shop: Shop, factory: Factory) -> None:
    pricey = await factory.product(price_cents=2**31 - 1)
    await expect_error(
        shop, PLACE, lines((pricey, 2)), shop.customer, "BAD_USER_INPUT", "input.lines"
    )
    data = await shop.api.data(PLACE, lines((pricey, 1)), token=shop.customer)
    assert data["placeOrder"]["totalCents"] == 2**31 - 1


async def test_place_order_needs_a_viewer(shop: Shop) -> None:
    await expect_error(shop, PLACE, lines((shop.lamp, 1)), None, "UNAUTHENTICATED")


CANCEL = "mutation($id: ID!) { cancelOrder(id: $id) { id status } }"
UPDATE_STATUS = """mutation($id: ID!, $status: OrderStatus!) {
  updateOrderStatus(id: $id, status: $status) { id status } }"""


async def _order(shop: Shop, status: str = "pending") -> str:
    data = await shop.api.data(PLACE, lines((shop.lamp, 1)), token=shop.customer)
    order_id = data["placeOrder"]["id"]
    path = {
        "pending": [],
        "paid": ["PAID"],
        "shipped": ["PAID", "SHIPPED"],
        "completed": ["PAID", "SHIPPED", "COMPLETED"],
        "cancelled": ["CANCELLED"],
    }[status]
    for step in path:
        await shop.api.data(UPDATE_STATUS, {"id": order_id, "status": step}, token=shop.admin)
    shop.announced.clear()
    return str(order_id)


@pytest.mark.parametrize("status", ["pending", "paid"])
async def test_owner_cancels_while_pending_or_paid(shop: Shop, status: str) -> None:
    order = await _order(shop, status)
    data = await shop.api.data(CANCEL, {"id": order}, token=shop.customer)
    assert data["cancelOrder"] == {"id": order, "status": "CANCELLED"}
    order_id = from_global_id(order, field="id")[1]
    assert shop.announced == [
        Changes(
            frozenset({f"Order:{order_id}"}),
            frozenset({"Order:list", f"Order:list:user_id={shop.customer_id}"}),
        )
    ]


@pytest.mark.parametrize("status", ["shipped", "completed", "cancelled"])
async def test_cancel_after_shipping_is_illegal(shop: Shop, status: str) -> None:
    order = await _order(shop, status)
    for token in (shop.customer, shop.admin):
        error = await expect_error(shop, CANCEL, {"id": order}, token, "BAD_USER_INPUT", "id")
        assert status.upper() in error["message"]
        assert "CANCELLED" in error["message"]


async def test_cancel_authorization(shop: Shop) -> None:
    order = await _order(shop)
    await expect_error(shop, CANCEL, {"id": order}, shop.other, "FORBIDDEN")
    await expect_error(shop, CANCEL, {"id": order}, None, "UNAUTHENTICATED")
    await expect_error(shop, CANCEL, {"id": gid("Order", 10**9)}, shop.admin, "NOT_FOUND", "id")
    await expect_error(shop, CANCEL, {"id": gid("Product", 1)}, shop.admin, "BAD_USER_INPUT", "id")
    data = await shop.api.data(CANCEL, {"id": order}, token=shop.admin)
    assert data["cancelOrder"]["status"] == "CANCELLED"


async def test_admin_walks_the_status_machine(shop: Shop) -> None:
    order = await _order(shop)
    for status in ("PAID", "SHIPPED", "COMPLETED"):
        data = await shop.api.data(UPDATE_STATUS, {"id": order, "status": status}, token=shop.admin)
        assert data["updateOrderStatus"]["status"] == status
    order_id = from_global_id(order, field="id")[1]
    expected = Changes(
        frozenset({f"Order:{order_id}"}),
        frozenset({"Order:list", f"Order:list:user_id={shop.customer_id}"}),
    )
    assert shop.announced == [expected] * 3


@pytest.mark.parametrize(
    ("start", "target"),
    [
        ("pending", "SHIPPED"),
        ("pending", "COMPLETED"),
        ("paid", "PENDING"),
        ("shipped", "PAID"),
        ("completed", "CANCELLED"),
        ("pending", "PENDING"),
        ("cancelled", "PAID"),
    ],
)
async def test_illegal_transitions_name_both_states(shop: Shop, start: str, target: str) -> None:
    order = await _order(shop, start)
    error = await expect_error(
        shop, UPDATE_STATUS, {"id": order, "status": target}, shop.admin, "BAD_USER_INPUT", "status"
    )
    assert start.upper() in error["message"]
    assert target in error["message"]


async def test_update_order_status_is_admin_only(shop: Shop) -> None:
    order = await _order(shop)
    for status in ("PAID", "CANCELLED"):
        await expect_error(
            shop, UPDATE_STATUS, {"id": order, "status": status}, shop.customer, "FORBIDDEN"
        )
    await expect_error(
        shop, UPDATE_STATUS, {"id": order, "status": "PAID"}, None, "UNAUTHENTICATED"
    )


REVIEW = """mutation($input: AddReviewInput!) { addReview(input: $input) {
  id rating body author { email } product { reviewCount averageRating reviews(first: 5) {
    totalCount nodes { id } } }
} }"""


def review(product: int, rating: int = 5, body: str = "Great") -> dict[str, Any]:
    return {"input": {"productId": gid("Product", product), "rating": rating, "body": body}}


async def test_add_review_is_seen_at_once(shop: Shop, factory: Factory) -> None:
    await factory.review(product_id=shop.lamp, rating=1)
    # Load the product's aggregates first in the same request, then review it.
    data = await shop.api.data(
        "mutation($input: AddReviewInput!) { addReview(input: $input) { id product {"
        " reviewCount averageRating reviews(first: 5) { totalCount nodes { id } } } } }",
        review(shop.lamp, 5, "  Bright  "),
        token=shop.customer,
    )
    added = data["addReview"]
    assert added["product"]["reviewCount"] == 2
    assert added["product"]["averageRating"] == 3.0
    assert added["product"]["reviews"]["totalCount"] == 2
    assert added["product"]["reviews"]["nodes"][0]["id"] == added["id"]
    review_id = from_global_id(added["id"], field="id")[1]
    assert shop.announced == [
        Changes(
            frozenset({f"Review:{review_id}", f"Product:{shop.lamp}", f"User:{shop.customer_id}"}),
            frozenset(
                {f"Review:list:product_id={shop.lamp}", f"Review:list:user_id={shop.customer_id}"}
            ),
        )
    ]
    later = await shop.api.data(
        "query($id: ID!) { node(id: $id) { ... on Review { body rating } } }", {"id": added["id"]}
    )
    assert later["node"] == {"body": "Bright", "rating": 5}


@pytest.mark.parametrize(
    ("variables", "field"),
    [
        (lambda s: review(s.lamp, 0), "input.rating"),
        (lambda s: review(s.lamp, 6), "input.rating"),
        (lambda s: review(s.lamp, 4, "   "), "input.body"),
        (lambda s: review(s.lamp, 4, "x" * 5001), "input.body"),
        (lambda s: review(10**9), "input.productId"),
        (lambda s: {"input": {"productId": "bad", "rating": 4, "body": "ok"}}, "input.productId"),
    ],
)
async def test_add_review_rejects_bad_input(shop: Shop, variables: Any, field: str) -> None:
    await expect_error(shop, REVIEW, variables(shop), shop.customer, "BAD_USER_INPUT", field)


async def test_add_review_boundaries_pass(shop: Shop) -> None:
    await shop.api.data(REVIEW, review(shop.lamp, 1, "x" * 5000), token=shop.customer)
    await shop.api.data(REVIEW, review(shop.chair, 5, "y"), token=shop.customer)


async def test_second_review_and_anonymous(shop: Shop) -> None:
    await shop.api.data(REVIEW, review(shop.lamp), token=shop.customer)
    shop.announced.clear()
    await expect_error(
        shop, REVIEW, review(shop.lamp), shop.customer, "BAD_USER_INPUT", "input.productId"
    )
    await expect_error(shop, REVIEW, review(shop.lamp), None, "UNAUTHENTICATED")


async def test_concurrent_reviews_race_to_one(shop: Shop) -> None:
    bodies = await asyncio.gather(
        *(
            shop.api.query(REVIEW, review(shop.chair, 3, f"take {i}"), token=shop.customer)
            for i in range(10)
        )
    )
    succeeded = [b for b in bodies if b.get("data")]
    failed = [b for b in bodies if not b.get("data")]
    assert len(succeeded) == 1
    assert len(failed) == 9
    assert {b["errors"][0]["extensions"]["code"] for b in failed} == {"BAD_USER_INPUT"}
    count = await shop.api.data(
        "query($id: ID!) { product(id: $id) { reviewCount } }", {"id": gid("Product", shop.chair)}
    )
    assert count["product"]["reviewCount"] == 1
    assert len(shop.announced) == 1


CREATE = """mutation($input: CreateProductInput!) { createProduct(input: $input) {
  id sku name description priceCents active category { name } } }"""


def product_input(shop: Shop, **overrides: Any) -> dict[str, Any]:
    values = {
        "sku": "NEW-1",
        "name": "Desk",
        "priceCents": 12000,
        "categoryId": gid("Category", shop.category),
    }
    return {"input": {**values, **overrides}}


async def test_create_product(shop: Shop) -> None:
    data = await shop.api.data(CREATE, product_input(shop), token=shop.admin)
    created = data["createProduct"]
    assert created["sku"] == "NEW-1"
    assert created["description"] == ""
    assert created["active"] is True
    product_id = from_global_id(created["id"], field="id")[1]
    assert shop.announced == [
        Changes(
            frozenset({f"Product:{product_id}"}),
            frozenset({"Product:list", f"Product:list:category_id={shop.category}"}),
        )
    ]
    listed = await shop.api.data("{ products(first: 1) { nodes { sku } totalCount } }")
    assert listed["products"] == {"nodes": [{"sku": "NEW-1"}], "totalCount": 3}


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"sku": "  "}, "input.sku"),
        ({"name": ""}, "input.name"),
        ({"priceCents": -1}, "input.priceCents"),
        ({"categoryId": "bad"}, "input.categoryId"),
        ({"categoryId": to_global_id("Category", 10**9)}, "input.categoryId"),
        ({"sku": "x" * 65}, "input.sku"),
    ],
)
async def test_create_product_rejects_bad_input(
    shop: Shop, overrides: dict[str, Any], field: str
) -> None:
    await expect_error(
        shop, CREATE, product_input(shop, **overrides), shop.admin, "BAD_USER_INPUT", field
    )


async def test_create_product_authorization_and_taken_sku(shop: Shop, factory: Factory) -> None:
    await expect_error(shop, CREATE, product_input(shop), shop.customer, "FORBIDDEN")
    await expect_error(shop, CREATE, product_input(shop), None, "UNAUTHENTICATED")
    await factory.product(sku="TAKEN")
    await expect_error(
        shop, CREATE, product_input(shop, sku="TAKEN"), shop.admin, "BAD_USER_INPUT", "input.sku"
    )


async def test_concurrent_creates_with_one_sku_make_one_row(shop: Shop) -> None:
    bodies = await asyncio.gather(
        *(
            shop.api.query(CREATE, product_input(shop, sku="RACE", name=f"n{i}"), token=shop.admin)
            for i in range(10)
        )
    )
    assert sum(1 for b in bodies if b.get("data")) == 1
    assert {b["errors"][0]["extensions"]["field"] for b in bodies if not b.get("data")} == {
        "input.sku"
    }
    rows = (await snapshot(shop.api.db))["products"]
    assert sum(1 for row in rows if row[1] == "RACE") == 1


UPDATE = """mutation($id: ID!, $input: UpdateProductInput!) {
  updateProduct(id: $id, input: $input) { id name priceCents active updatedAt category { id } } }"""


async def test_update_product_bumps_updated_at_and_moves_lists(
    shop: Shop, factory: Factory
) -> None:
    garden = await factory.category(name="Garden")
    before = await shop.api.data(
        "query($id: ID!) { product(id: $id) { updatedAt } }", {"id": gid("Product", shop.lamp)}
    )
    data = await shop.api.data(
        UPDATE,
        {
            "id": gid("Product", shop.lamp),
            "input": {"name": "Lamp 2", "priceCents": 0, "categoryId": gid("Category", garden)},
        },
        token=shop.admin,
    )
    updated = data["updateProduct"]
    assert (updated["name"], updated["priceCents"]) == ("Lamp 2", 0)
    assert updated["category"]["id"] == gid("Category", garden)
    assert updated["updatedAt"] > before["product"]["updatedAt"]
    assert shop.announced == [
        Changes(
            frozenset({f"Product:{shop.lamp}"}),
            frozenset(
                {
                    "Product:list",
                    f"Product:list:category_id={shop.category}",
                    f"Product:list:category_id={garden}",
                }
            ),
        )
    ]
    # Deactivated products leave the default listing at once.
    await shop.api.data(
        UPDATE, {"id": gid("Product", shop.lamp), "input": {"active": False}}, token=shop.admin
    )
    listed = await shop.api.data("{ products { nodes { name } } }")
    assert listed["products"]["nodes"] == [{"name": "Chair"}]


async def test_update_product_errors(shop: Shop) -> None:
    target = {"id": gid("Product", shop.lamp)}
    await expect_error(
        shop,
        UPDATE,
        {**target, "input": {"priceCents": -5}},
        shop.admin,
        "BAD_USER_INPUT",
        "input.priceCents",
    )
    await expect_error(
        shop, UPDATE, {**target, "input": {"name": " "}}, shop.admin, "BAD_USER_INPUT", "input.name"
    )
    await expect_error(
        shop,
        UPDATE,
        {**target, "input": {"categoryId": gid("Category", 10**9)}},
        shop.admin,
        "BAD_USER_INPUT",
        "input.categoryId",
    )
    await expect_error(
        shop,
        UPDATE,
        {"id": gid("Product", 10**9), "input": {"name": "x"}},
        shop.admin,
        "NOT_FOUND",
        "id",
    )
    await expect_error(shop, UPDATE, {**target, "input": {"name": "x"}}, shop.customer, "FORBIDDEN")
    await expect_error(shop, UPDATE, {**target, "input": {"name": "x"}}, None, "UNAUTHENTICATED")


async def test_reads_after_writes_in_one_operation_see_the_writes(shop: Shop) -> None:
    """Later mutation fields of the same request read through cleared loaders."""
    data = await shop.api.data(
        """mutation($id: ID!, $input: AddReviewInput!) {
          a: updateProduct(id: $id, input: {name: "Renamed"}) { name reviewCount }
          b: addReview(input: $input) { product { name reviewCount averageRating } }
          c: updateProduct(id: $id, input: {priceCents: 1}) { priceCents reviewCount name }
        }""",
        {"id": gid("Product", shop.lamp), **review(shop.lamp, 4)},
        token=shop.admin,
    )
    assert data["a"] == {"name": "Renamed", "reviewCount": 0}
    assert data["b"]["product"] == {"name": "Renamed", "reviewCount": 1, "averageRating": 4.0}
    assert data["c"] == {"priceCents": 1, "reviewCount": 1, "name": "Renamed"}
    assert len(shop.announced) == 3
