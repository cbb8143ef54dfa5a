"""Never stale after a write: for each mutation, read (cached), mutate, read again
through HTTP with the result cache on, in process and in Redis, and across two
app instances sharing Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio

from schema.global_id import to_global_id
from tests.cache_support import CACHE_BACKENDS, cache_env, cached_app, clear_cache
from tests.conftest import Api, Database
from tests.factories import Factory
from tests.redis_support import require_redis_url
from tests.server.apps import serve

PRODUCT = """query($id: ID!) { product(id: $id) {
  name priceCents reviewCount averageRating reviews { totalCount nodes { body } }
} }"""
PRODUCTS = "{ products { totalCount nodes { name } } }"
CATEGORY_PRODUCTS = """query($id: ID!) { node(id: $id) {
  ... on Category { products { totalCount nodes { name } } }
} }"""
BY_SKU = "query($sku: String!) { product(sku: $sku) { name } }"
USER_REVIEWS = "query($id: ID!) { user(id: $id) { reviews { totalCount } } }"
VIEWER_ORDERS = "{ viewer { orderCount orders { totalCount nodes { id status } } } }"
PENDING = "{ viewer { orders(status: PENDING) { totalCount } } }"
ORDER = "query($id: ID!) { order(id: $id) { status } }"
ALL_ORDERS = "{ orders { nodes { id status } } }"

UPDATE_PRODUCT = """mutation($id: ID!, $input: UpdateProductInput!) {
  updateProduct(id: $id, input: $input) { id } }"""
CREATE_PRODUCT = """mutation($input: CreateProductInput!) {
  createProduct(input: $input) { id } }"""
ADD_REVIEW = "mutation($input: AddReviewInput!) { addReview(input: $input) { id } }"
PLACE_ORDER = "mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { id } }"
CANCEL_ORDER = "mutation($id: ID!) { cancelOrder(id: $id) { id } }"
UPDATE_STATUS = """mutation($id: ID!, $status: OrderStatus!) {
  updateOrderStatus(id: $id, status: $status) { id } }"""


def gid(type_name: str, id_: int) -> str:
    return to_global_id(type_name, id_)


@dataclass
class Shop:
    admin: str
    customer: str
    customer_id: int
    home: int
    garden: int
    lamp: int
    chair: int


@pytest_asyncio.fixture
async def shop(db: Database, factory: Factory) -> Shop:
    from resolvers.tokens import create_token

    admin = await create_token(sessionmaker=db.sessionmaker, email="a@example.com", role="admin")
    customer = await create_token(sessionmaker=db.sessionmaker, email="c@example.com")
    home = await factory.category(name="Home")
    garden = await factory.category(name="Garden")
    lamp = await factory.product(name="Lamp", price_cents=1500, category_id=home)
    chair = await factory.product(name="Chair", price_cents=4000, category_id=home)
    return Shop(admin.token, customer.token, customer.user_id, home, garden, lamp, chair)


@pytest_asyncio.fixture(params=CACHE_BACKENDS)
async def api(request: pytest.FixtureRequest, db: Database) -> AsyncIterator[Api]:
    async with cached_app(db, request.param) as api:
        yield api


async def read(api: Api, query: str, variables: dict[str, Any] | None = None, **kw: Any) -> Any:
    """`data` of a query, asserting it came from the cache when asked a second time."""
    response = await api.post(query, variables, **kw)
    assert response.status_code == 200, response.text
    assert "errors" not in response.json(), response.text
    return response.json()["data"]


async def warm(api: Api, query: str, variables: dict[str, Any] | None = None, **kw: Any) -> Any:
    """`data` of a query asked twice: the second answer must be a cache hit."""
    first = await read(api, query, variables, **kw)
    again = await api.post(query, variables, **kw)
    assert again.headers["x-cache"] == "HIT", again.headers
    assert again.json()["data"] == first
    return first


async def mutate(api: Api, query: str, variables: dict[str, Any], token: str) -> Any:
    data = await read(api, query, variables, token=token)
    return next(iter(data.values()))


async def test_update_product_is_seen_by_the_product_and_every_list(api: Api, shop: Shop) -> None:
    lamp = {"id": gid("Product", shop.lamp)}
    home, garden = {"id": gid("Category", shop.home)}, {"id": gid("Category", shop.garden)}
    assert (await warm(api, PRODUCT, lamp))["product"]["name"] == "Lamp"
    await warm(api, PRODUCTS)
    assert (await warm(api, CATEGORY_PRODUCTS, home))["node"]["products"]["totalCount"] == 2
    assert (await warm(api, CATEGORY_PRODUCTS, garden))["node"]["products"]["totalCount"] == 0

    await mutate(
        api,
        UPDATE_PRODUCT,
        {**lamp, "input": {"name": "Desk lamp", "priceCents": 999, "categoryId": garden["id"]}},
        shop.admin,
    )

    product = (await read(api, PRODUCT, lamp))["product"]
    assert (product["name"], product["priceCents"]) == ("Desk lamp", 999)
    assert "Desk lamp" in [p["name"] for p in (await read(api, PRODUCTS))["products"]["nodes"]]
    left = (await read(api, CATEGORY_PRODUCTS, home))["node"]["products"]
    joined = (await read(api, CATEGORY_PRODUCTS, garden))["node"]["products"]
    assert [p["name"] for p in left["nodes"]] == ["Chair"]
    assert [p["name"] for p in joined["nodes"]] == ["Desk lamp"]
    assert (left["totalCount"], joined["totalCount"]) == (1, 1)


async def test_deactivating_a_product_takes_it_out_of_the_listings(api: Api, shop: Shop) -> None:
    await warm(api, PRODUCTS)

    await mutate(
        api,
        UPDATE_PRODUCT,
        {"id": gid("Product", shop.chair), "input": {"active": False}},
        shop.admin,
    )

    listed = (await read(api, PRODUCTS))["products"]
    assert [p["name"] for p in listed["nodes"]] == ["Lamp"]
    assert listed["totalCount"] == 1


async def test_create_product_joins_its_lists(api: Api, shop: Shop) -> None:
    home = {"id": gid("Category", shop.home)}
    assert (await warm(api, PRODUCTS))["products"]["totalCount"] == 2
    await warm(api, CATEGORY_PRODUCTS, home)
    assert (await warm(api, BY_SKU, {"sku": "NEW-1"}))["product"] is None

    await mutate(
        api,
        CREATE_PRODUCT,
        {"input": {"sku": "NEW-1", "name": "Stool", "priceCents": 2500, "categoryId": home["id"]}},
        shop.admin,
    )

    assert (await read(api, PRODUCTS))["products"]["totalCount"] == 3
    in_home = (await read(api, CATEGORY_PRODUCTS, home))["node"]["products"]["nodes"]
    assert "Stool" in [p["name"] for p in in_home]
    assert (await read(api, BY_SKU, {"sku": "NEW-1"}))["product"] == {"name": "Stool"}


async def test_add_review_joins_the_reviews_and_moves_the_counts(api: Api, shop: Shop) -> None:
    lamp = {"id": gid("Product", shop.lamp)}
    author = {"id": gid("User", shop.customer_id)}
    before = (await warm(api, PRODUCT, lamp))["product"]
    assert (before["reviewCount"], before["averageRating"]) == (0, None)
    assert (await warm(api, USER_REVIEWS, author))["user"]["reviews"]["totalCount"] == 0

    await mutate(
        api,
        ADD_REVIEW,
        {"input": {"productId": lamp["id"], "rating": 4, "body": "Bright."}},
        shop.customer,
    )

    after = (await read(api, PRODUCT, lamp))["product"]
    assert (after["reviewCount"], after["averageRating"]) == (1, 4.0)
    assert after["reviews"] == {"totalCount": 1, "nodes": [{"body": "Bright."}]}
    assert (await read(api, USER_REVIEWS, author))["user"]["reviews"]["totalCount"] == 1


async def test_place_order_joins_the_viewers_orders_and_the_admin_listing(
    api: Api, shop: Shop
) -> None:
    mine = (await warm(api, VIEWER_ORDERS, token=shop.customer))["viewer"]
    assert (mine["orderCount"], mine["orders"]["totalCount"]) == (0, 0)
    assert (await warm(api, ALL_ORDERS, token=shop.admin))["orders"]["nodes"] == []

    order = await mutate(
        api,
        PLACE_ORDER,
        {"input": {"lines": [{"productId": gid("Product", shop.lamp), "quantity": 2}]}},
        shop.customer,
    )

    mine = (await read(api, VIEWER_ORDERS, token=shop.customer))["viewer"]
    assert mine["orderCount"] == 1
    assert mine["orders"]["nodes"] == [{"id": order["id"], "status": "PENDING"}]
    assert (await read(api, ALL_ORDERS, token=shop.admin))["orders"]["nodes"] == [
        {"id": order["id"], "status": "PENDING"}
    ]


async def test_cancel_order_is_seen_by_the_order_and_the_filtered_lists(
    api: Api, shop: Shop, factory: Factory
) -> None:
    order_id = await factory.order(user_id=shop.customer_id, status="pending")
    order = {"id": gid("Order", order_id)}
    assert (await warm(api, ORDER, order, token=shop.customer))["order"]["status"] == "PENDING"
    assert (await warm(api, PENDING, token=shop.customer))["viewer"]["orders"]["totalCount"] == 1

    await mutate(api, CANCEL_ORDER, order, shop.customer)

    assert (await read(api, ORDER, order, token=shop.customer))["order"]["status"] == "CANCELLED"
    assert (await read(api, PENDING, token=shop.customer))["viewer"]["orders"]["totalCount"] == 0


async def test_update_order_status_is_seen_by_the_customer_and_the_admin(
    api: Api, shop: Shop, factory: Factory
) -> None:
    order_id = await factory.order(user_id=shop.customer_id, status="pending")
    order = {"id": gid("Order", order_id)}
    await warm(api, ORDER, order, token=shop.customer)
    await warm(api, ALL_ORDERS, token=shop.admin)

    await mutate(api, UPDATE_STATUS, {**order, "status": "PAID"}, shop.admin)

    assert (await read(api, ORDER, order, token=shop.customer))["order"]["status"] == "PAID"
    listed = (await read(api, ALL_ORDERS, token=shop.admin))["orders"]["nodes"]
    assert [o["status"] for o in listed] == ["PAID"]


async def test_two_instances_sharing_redis_agree(db: Database, shop: Shop) -> None:
    """Mutate on one instance, read on the other: the other's cached answers are gone."""
    redis_url = require_redis_url()
    await clear_cache(redis_url)
    env = cache_env("redis", redis_url)
    lamp = {"id": gid("Product", shop.lamp)}
    try:
        async with serve(db, **env) as writer, serve(db, **env) as reader:
            await warm(reader, PRODUCT, lamp)
            await warm(reader, VIEWER_ORDERS, token=shop.customer)
            await warm(reader, PRODUCTS)

            await mutate(writer, UPDATE_PRODUCT, {**lamp, "input": {"name": "Desk"}}, shop.admin)
            await mutate(
                writer,
                ADD_REVIEW,
                {"input": {"productId": lamp["id"], "rating": 5, "body": "Yes."}},
                shop.customer,
            )
            order = await mutate(
                writer,
                PLACE_ORDER,
                {"input": {"lines": [{"productId": lamp["id"], "quantity": 1}]}},
                shop.customer,
            )

            product = (await read(reader, PRODUCT, lamp))["product"]
            assert (product["name"], product["reviewCount"]) == ("Desk", 1)
            mine = (await read(reader, VIEWER_ORDERS, token=shop.customer))["viewer"]
            assert [o["id"] for o in mine["orders"]["nodes"]] == [order["id"]]
            assert "Desk" in [
                p["name"] for p in (await read(reader, PRODUCTS))["products"]["nodes"]
            ]
            # Both instances cache again afterwards, from the same store.
            await read(writer, PRODUCT, lamp)
            again = await reader.post(PRODUCT, lamp)
            assert again.headers["x-cache"] == "HIT"
    finally:
        await clear_cache(redis_url)
