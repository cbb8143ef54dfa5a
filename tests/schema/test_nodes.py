"""Global IDs, `node` and `nodes`."""

from __future__ import annotations

import base64

import pytest

from schema.global_id import to_global_id
from tests.conftest import Api
from tests.factories import Factory

NODE = "query($id: ID!) { node(id: $id) { __typename id } }"


async def test_every_node_type_round_trips(api: Api, factory: Factory) -> None:
    admin = await api.token("admin@example.com", role="admin")
    product = await factory.product()
    review = await factory.review(product_id=product)
    order = await factory.order(items=[(product, 1, 1)])
    category = (
        await api.data(
            "query($id: ID!) { node(id: $id) { ... on Product { category { id } } } }",
            {"id": to_global_id("Product", product)},
        )
    )["node"]["category"]["id"]
    for type_name, id_ in (("Product", product), ("Review", review), ("Order", order)):
        gid = to_global_id(type_name, id_)
        assert (await api.data(NODE, {"id": gid}, token=admin))["node"] == {
            "__typename": type_name,
            "id": gid,
        }
    assert (await api.data(NODE, {"id": category}))["node"]["__typename"] == "Category"
    items = (
        await api.data(
            "query($id: ID!) { order(id: $id) { items { id } customer { id } } }",
            {"id": to_global_id("Order", order)},
            token=admin,
        )
    )["order"]
    assert (await api.data(NODE, {"id": items["customer"]["id"]}))["node"]["__typename"] == "User"
    # An OrderItem ID is a valid ID but OrderItem is not a Node.
    assert (await api.data(NODE, {"id": items["items"][0]["id"]}))["node"] is None


async def test_nodes_keeps_order_and_hides_what_is_not_visible(api: Api, factory: Factory) -> None:
    product = await factory.product()
    order = await factory.order()
    ids = [
        to_global_id("Order", order),
        to_global_id("Product", product),
        to_global_id("Product", 10**9),
    ]
    data = await api.data("query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": ids})
    assert data["nodes"] == [None, {"id": ids[1]}, None]


@pytest.mark.parametrize(
    "bad_id",
    [
        "not-base64!!",
        base64.urlsafe_b64encode(b"Product:abc").decode(),
        base64.urlsafe_b64encode(b"Spaceship:1").decode(),
        base64.urlsafe_b64encode(b"Product:-1").decode(),
        "",
    ],
)
async def test_malformed_ids_are_bad_user_input(api: Api, bad_id: str) -> None:
    body = await api.query(NODE, {"id": bad_id})
    assert body["data"] == {"node": None}
    assert body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "id"}


async def test_id_of_the_wrong_type_is_bad_user_input(api: Api, factory: Factory) -> None:
    product = await factory.product()
    body = await api.query(
        "query($id: ID!) { user(id: $id) { name } }", {"id": to_global_id("Product", product)}
    )
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "User" in body["errors"][0]["message"]


async def test_an_id_beyond_bigint_is_bad_user_input(api: Api) -> None:
    body = await api.query(NODE, {"id": to_global_id("Product", 2**63)})
    assert body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "id"}
    assert (await api.data(NODE, {"id": to_global_id("Product", 2**63 - 1)}))["node"] is None
