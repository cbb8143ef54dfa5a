"""Products and categories through the HTTP endpoint."""

from __future__ import annotations

from typing import Any

from schema.global_id import to_global_id
from tests.conftest import Api
from tests.factories import Factory, at


async def test_product_by_id_and_sku(api: Api, factory: Factory) -> None:
    category = await factory.category(name="Tools")
    product = await factory.product(
        sku="HAM-1", name="Hammer", price_cents=1999, category_id=category
    )
    query = """query($id: ID, $sku: String) { product(id: $id, sku: $sku) {
        id sku name priceCents active createdAt updatedAt description category { id name } } }"""
    by_id = await api.data(query, {"id": to_global_id("Product", product)})
    by_sku = await api.data(query, {"sku": "HAM-1"})
    assert by_id == by_sku
    got = by_id["product"]
    assert got["id"] == to_global_id("Product", product)
    assert (got["sku"], got["name"], got["priceCents"], got["active"]) == (
        "HAM-1",
        "Hammer",
        1999,
        True,
    )
    assert got["category"] == {"id": to_global_id("Category", category), "name": "Tools"}
    assert got["createdAt"].endswith("+00:00")
    assert (await api.data(query, {"sku": "nope"}))["product"] is None


async def test_product_needs_exactly_one_of_id_or_sku(api: Api, factory: Factory) -> None:
    product = await factory.product(sku="A")
    for variables in ({}, {"id": to_global_id("Product", product), "sku": "A"}):
        body = await api.query(
            "query($id: ID, $sku: String) { product(id: $id, sku: $sku) { name } }", variables
        )
        assert body["data"] == {"product": None}
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_products_default_listing_is_active_newest_first(api: Api, factory: Factory) -> None:
    old = await factory.product(created_at=at(1))
    new = await factory.product(created_at=at(3))
    await factory.product(created_at=at(2), active=False)
    data = await api.data("{ products { totalCount nodes { id } edges { cursor node { id } } } }")
    ids = [node["id"] for node in data["products"]["nodes"]]
    assert ids == [to_global_id("Product", new), to_global_id("Product", old)]
    assert data["products"]["totalCount"] == 2
    assert [edge["node"]["id"] for edge in data["products"]["edges"]] == ids


async def _walk(api: Api, sort: str, page_size: int, extra: str = "", **kw: Any) -> list[str]:
    seen: list[str] = []
    after = None
    while True:
        data = await api.data(
            """query($first: Int, $after: String, $sort: ProductSort, $filter: ProductFilter) {
              products(first: $first, after: $after, sort: $sort, filter: $filter) {
                nodes { id } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }""",
            {"first": page_size, "after": after, "sort": sort, **kw},
        )
        connection = data["products"]
        seen += [node["id"] for node in connection["nodes"]]
        assert connection["pageInfo"]["hasPreviousPage"] is (after is not None)
        if not connection["pageInfo"]["hasNextPage"]:
            return seen
        after = connection["pageInfo"]["endCursor"]


async def test_every_sort_pages_through_everything_once_with_ties(
    api: Api, factory: Factory
) -> None:
    ids = []
    for i in range(7):
        # Equal prices, names and timestamps in pairs: the id breaks ties.
        ids.append(
            await factory.product(
                price_cents=100 * (i // 2), name=f"N{i // 2}", created_at=at(i // 2)
            )
        )
    for sort in ("NEWEST", "PRICE_ASC", "PRICE_DESC", "NAME"):
        walked = await _walk(api, sort, 2)
        assert sorted(walked) == sorted(to_global_id("Product", i) for i in ids), sort
        assert len(walked) == len(set(walked)), sort
    assert await _walk(api, "PRICE_ASC", 3) == [to_global_id("Product", i) for i in ids]
    assert await _walk(api, "NEWEST", 3) == [to_global_id("Product", i) for i in reversed(ids)]


async def test_cursors_are_stable_under_inserts(api: Api, factory: Factory) -> None:
    first_ids = [await factory.product(created_at=at(i)) for i in range(4)]
    page = await api.data("{ products(first: 2) { nodes { id } pageInfo { endCursor } } }")
    await factory.product(created_at=at(100))  # newer: lands before the cursor
    rest = await api.data(
        "query($after: String) { products(first: 10, after: $after) { nodes { id } } }",
        {"after": page["products"]["pageInfo"]["endCursor"]},
    )
    assert [n["id"] for n in rest["products"]["nodes"]] == [
        to_global_id("Product", i) for i in reversed(first_ids[:2])
    ]


async def test_product_filters(api: Api, factory: Factory) -> None:
    tools = await factory.category()
    hammer = await factory.product(name="Big Hammer", price_cents=2000, category_id=tools)
    await factory.product(name="hammer 100%", price_cents=500, category_id=tools)
    await factory.product(name="Saw", price_cents=3000)
    query = "query($f: ProductFilter) { products(filter: $f) { totalCount nodes { name } } }"
    got = await api.data(query, {"f": {"search": "HAMMER", "minPriceCents": 1000}})
    assert got["products"] == {"totalCount": 1, "nodes": [{"name": "Big Hammer"}]}
    got = await api.data(
        query, {"f": {"categoryId": to_global_id("Category", tools), "maxPriceCents": 600}}
    )
    assert got["products"]["nodes"] == [{"name": "hammer 100%"}]
    got = await api.data(query, {"f": {"search": "0%"}})
    assert got["products"]["nodes"] == [{"name": "hammer 100%"}]
    body = await api.query(query, {"f": {"categoryId": to_global_id("Product", hammer)}})
    assert body["errors"][0]["extensions"] == {
        "code": "BAD_USER_INPUT",
        "field": "filter.categoryId",
    }


async def test_inactive_products_are_for_admins_only(api: Api, factory: Factory) -> None:
    await factory.product(name="Gone", active=False)
    await factory.product(name="Here")
    query = "query($f: ProductFilter) { products(filter: $f) { nodes { name active } } }"
    body = await api.query(query, {"f": {"active": False}})
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    admin = await api.token("boss@example.com", role="admin")
    got = await api.data(query, {"f": {"active": None}}, token=admin)
    assert sorted(n["name"] for n in got["products"]["nodes"]) == ["Gone", "Here"]
    got = await api.data(query, {"f": {"active": False}}, token=admin)
    assert got["products"]["nodes"] == [{"name": "Gone", "active": False}]


async def test_categories_tree(api: Api, factory: Factory) -> None:
    garden = await factory.category(name="Garden")
    home = await factory.category(name="Home")
    await factory.category(name="Tables", parent_id=home)
    await factory.category(name="Chairs", parent_id=home)
    await factory.category(name="Hoses", parent_id=garden)
    data = await api.data("{ categories { name parent { name } children { name } } }")
    assert [c["name"] for c in data["categories"]] == [
        "Garden",
        "Home",
        "Chairs",
        "Hoses",
        "Tables",
    ]
    assert data["categories"][1]["children"] == [{"name": "Chairs"}, {"name": "Tables"}]
    assert data["categories"][2]["parent"] == {"name": "Home"}
    assert data["categories"][0]["parent"] is None


async def test_category_products_are_active_newest_first(api: Api, factory: Factory) -> None:
    category = await factory.category()
    a = await factory.product(category_id=category, created_at=at(1))
    b = await factory.product(category_id=category, created_at=at(2))
    await factory.product(category_id=category, active=False)
    await factory.product()
    data = await api.data(
        "query($id: ID!) { node(id: $id) { ... on Category { products(first: 1) {"
        " totalCount nodes { id } pageInfo { hasNextPage } } } } }",
        {"id": to_global_id("Category", category)},
    )
    products = data["node"]["products"]
    assert products["totalCount"] == 2
    assert products["nodes"] == [{"id": to_global_id("Product", b)}]
    assert products["pageInfo"]["hasNextPage"] is True
    del a


async def test_reviews_and_rating_aggregates(api: Api, factory: Factory) -> None:
    product = await factory.product()
    lonely = await factory.product()
    author = await factory.user(name="Ann")
    await factory.review(product_id=product, rating=5, user_id=author, created_at=at(1))
    await factory.review(product_id=product, rating=2, created_at=at(2))
    data = await api.data(
        "query($ids: [ID!]!) { nodes(ids: $ids) { ... on Product { averageRating reviewCount"
        " reviews(first: 1) { totalCount nodes { rating author { name } } } } } }",
        {"ids": [to_global_id("Product", product), to_global_id("Product", lonely)]},
    )
    rated, unrated = data["nodes"]
    assert rated["averageRating"] == 3.5
    assert rated["reviewCount"] == 2
    assert rated["reviews"]["totalCount"] == 2
    assert rated["reviews"]["nodes"][0]["rating"] == 2
    assert unrated == {
        "averageRating": None,
        "reviewCount": 0,
        "reviews": {"totalCount": 0, "nodes": []},
    }
