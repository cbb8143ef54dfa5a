"""Visibility rules of users and orders through the HTTP endpoint."""

from __future__ import annotations

from schema.global_id import to_global_id
from tests.conftest import Api
from tests.factories import Factory, at

USER_QUERY = """query($id: ID!) { user(id: $id) {
  name email role orderCount orders(first: 5) { totalCount nodes { id totalCents status } }
} }"""


async def test_private_fields_are_for_the_user_and_admins(api: Api, factory: Factory) -> None:
    owner_token = await api.token("owner@example.com")
    other_token = await api.token("other@example.com")
    admin_token = await api.token("admin@example.com", role="admin")
    owner = (await api.data("{ viewer { id } }", token=owner_token))["viewer"]["id"]
    product = await factory.product()
    from schema.global_id import from_global_id

    owner_id = from_global_id(owner, field="id")[1]
    await factory.order(user_id=owner_id, items=[(product, 2, 150)], status="paid")

    for token in (owner_token, admin_token):
        data = await api.data(USER_QUERY, {"id": owner}, token=token)
        assert data["user"]["email"] == "owner@example.com"
        assert data["user"]["role"] == "CUSTOMER"
        assert data["user"]["orderCount"] == 1
        assert data["user"]["orders"]["nodes"][0]["totalCents"] == 300
        assert data["user"]["orders"]["nodes"][0]["status"] == "PAID"

    for token in (other_token, None):
        body = await api.query(USER_QUERY, {"id": owner}, token=token)
        user = body["data"]["user"]
        assert user["name"] == "owner"
        assert (user["email"], user["role"], user["orders"], user["orderCount"]) == (
            None,
            None,
            None,
            None,
        )
        codes = sorted(e["extensions"]["code"] for e in body["errors"])
        # The contract: anyone but the user or an admin, anonymous included.
        assert codes == ["FORBIDDEN", "FORBIDDEN"]


async def test_user_orders_filter_by_status_newest_first(api: Api, factory: Factory) -> None:
    token = await api.token("me@example.com")
    me = (await api.data("{ viewer { id } }", token=token))["viewer"]["id"]
    from schema.global_id import from_global_id

    user_id = from_global_id(me, field="id")[1]
    paid_old = await factory.order(user_id=user_id, status="paid", created_at=at(1))
    await factory.order(user_id=user_id, status="cancelled", created_at=at(2))
    paid_new = await factory.order(user_id=user_id, status="paid", created_at=at(3))
    data = await api.data(
        "{ viewer { orders(status: PAID) { totalCount nodes { id } } orderCount } }", token=token
    )
    assert data["viewer"]["orders"]["nodes"] == [
        {"id": to_global_id("Order", paid_new)},
        {"id": to_global_id("Order", paid_old)},
    ]
    assert data["viewer"]["orders"]["totalCount"] == 2
    assert data["viewer"]["orderCount"] == 3


async def test_order_by_id_owner_admin_forbidden(api: Api, factory: Factory) -> None:
    owner_token = await api.token("owner@example.com")
    other_token = await api.token("other@example.com")
    admin_token = await api.token("admin@example.com", role="admin")
    owner = (await api.data("{ viewer { id } }", token=owner_token))["viewer"]["id"]
    from schema.global_id import from_global_id

    product = await factory.product(name="Lamp")
    order = await factory.order(
        user_id=from_global_id(owner, field="id")[1],
        items=[(product, 1, 500), (await factory.product(), 3, 10)],
    )
    query = """query($id: ID!) { order(id: $id) { id totalCents customer { id }
      items { id quantity unitPriceCents product { name } order { id } } } }"""
    variables = {"id": to_global_id("Order", order)}
    for token in (owner_token, admin_token):
        data = await api.data(query, variables, token=token)
        assert data["order"]["customer"]["id"] == owner
        assert [i["quantity"] for i in data["order"]["items"]] == [1, 3]
        assert data["order"]["items"][0]["product"]["name"] == "Lamp"
        assert data["order"]["items"][0]["order"]["id"] == variables["id"]
    body = await api.query(query, variables, token=other_token)
    assert body["data"] == {"order": None}
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    body = await api.query(query, variables)  # anonymous: FORBIDDEN too, as the contract says
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    missing = await api.data(query, {"id": to_global_id("Order", 999999)}, token=admin_token)
    assert missing == {"order": None}


async def test_orders_root_rules(api: Api, factory: Factory) -> None:
    mine_token = await api.token("mine@example.com")
    admin_token = await api.token("admin@example.com", role="admin")
    from schema.global_id import from_global_id

    me = from_global_id(
        (await api.data("{ viewer { id } }", token=mine_token))["viewer"]["id"], field="id"
    )[1]
    someone = await factory.user()
    mine = await factory.order(user_id=me, status="paid", created_at=at(5))
    theirs = await factory.order(user_id=someone, status="paid", created_at=at(6))
    await factory.order(user_id=someone, status="completed", created_at=at(7))
    query = "query($f: OrderFilter) { orders(filter: $f) { totalCount nodes { id } } }"
    # A customer sees only their own orders; customerId is ignored.
    data = await api.data(
        query, {"f": {"customerId": to_global_id("User", someone)}}, token=mine_token
    )
    assert data["orders"] == {"totalCount": 1, "nodes": [{"id": to_global_id("Order", mine)}]}
    data = await api.data(query, {"f": {"status": "PAID"}}, token=admin_token)
    assert data["orders"]["nodes"] == [
        {"id": to_global_id("Order", theirs)},
        {"id": to_global_id("Order", mine)},
    ]
    data = await api.data(
        query,
        {"f": {"customerId": to_global_id("User", someone), "createdBefore": at(7).isoformat()}},
        token=admin_token,
    )
    assert data["orders"]["nodes"] == [{"id": to_global_id("Order", theirs)}]
    # createdAfter is inclusive, createdBefore exclusive: adjacent ranges tile.
    data = await api.data(query, {"f": {"createdAfter": at(6).isoformat()}}, token=admin_token)
    assert data["orders"]["totalCount"] == 2
    body = await api.query(query)
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_users_listing_is_admin_only(api: Api, factory: Factory) -> None:
    customer = await api.token("c@example.com")
    admin = await api.token("a@example.com", role="admin")
    await factory.user()
    body = await api.query("{ users { totalCount } }", token=customer)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    body = await api.query("{ users { totalCount } }")
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    data = await api.data(
        "{ users(first: 2) { totalCount nodes { email } pageInfo { hasNextPage } } }", token=admin
    )
    assert data["users"]["totalCount"] == 3
    assert data["users"]["pageInfo"]["hasNextPage"] is True


async def test_user_reviews_are_public(api: Api, factory: Factory) -> None:
    author = await factory.user()
    await factory.review(user_id=author, rating=3, created_at=at(1))
    await factory.review(user_id=author, rating=5, created_at=at(2))
    data = await api.data(
        "query($id: ID!) { user(id: $id) {"
        " reviews { totalCount nodes { rating product { id } } } } }",
        {"id": to_global_id("User", author)},
    )
    assert [n["rating"] for n in data["user"]["reviews"]["nodes"]] == [5, 3]
    assert data["user"]["reviews"]["totalCount"] == 2


async def test_viewer_is_null_when_anonymous(api: Api) -> None:
    assert await api.data("{ viewer { id } }") == {"viewer": None}
