"""Hostile inputs through HTTP: long searches and skus, control characters, deep
variables and cursors are BAD_USER_INPUT naming the input, before any SQL runs."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import pytest

from resolvers.catalog import MAX_SEARCH_LENGTH
from schema.cost import COSTS
from schema.global_id import to_global_id
from schema.input_values import MAX_VARIABLE_DEPTH
from tests.conftest import Api, snapshot

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
SEARCH = "query($s: String) { products(filter: { search: $s }) { totalCount nodes { name } } }"
SKU = "query($sku: String) { product(sku: $sku) { name } }"


def _error(body: dict[str, Any]) -> Any:
    [error] = body["errors"]
    return error


def _bad_input(body: dict[str, Any], field: str) -> None:
    error = _error(body)
    assert error["extensions"]["code"] == "BAD_USER_INPUT", body
    assert error["extensions"]["field"] == field, body


@pytest.fixture
def no_error_logs(caplog: pytest.LogCaptureFixture) -> Any:
    """Fails the test if anything was logged at ERROR (a traceback for bad input)."""
    with caplog.at_level(logging.ERROR):
        yield
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


# Search and sku lengths --------------------------------------------------------------


async def test_a_search_of_at_most_100_characters_runs(api: Api, factory: Any) -> None:
    category = await factory.category()
    await factory.product(category_id=category, name="Oak table")

    at_limit = "o" * (MAX_SEARCH_LENGTH - 3) + "Oak"
    assert (await api.data(SEARCH, {"s": at_limit}))["products"]["totalCount"] == 0
    assert (await api.data(SEARCH, {"s": "oAK"}))["products"]["nodes"] == [{"name": "Oak table"}]


@pytest.mark.parametrize("inline", [False, True])
async def test_a_longer_search_is_refused_before_any_sql(api: Api, inline: bool) -> None:
    pattern = "x" * (MAX_SEARCH_LENGTH + 1)
    if inline:
        body = await api.query(
            f'{{ products(filter: {{ search: "{pattern}" }}) {{ totalCount }} }}'
        )
    else:
        body = await api.query(SEARCH, {"s": pattern})

    _bad_input(body, "filter.search")
    assert "at most 100 characters" in _error(body)["message"]
    assert api.statements == []


async def test_a_sku_longer_than_100_characters_is_refused_before_any_sql(
    api: Api, factory: Any
) -> None:
    category = await factory.category()
    await factory.product(category_id=category, sku="SKU-1", name="Chair")
    assert await api.data(SKU, {"sku": "SKU-1"}) == {"product": {"name": "Chair"}}
    api.statements.clear()

    body = await api.query(SKU, {"sku": "S" * 101})

    _bad_input(body, "sku")
    assert body["data"] == {"product": None}
    assert api.statements == []


async def test_a_search_is_priced_by_the_cost_table(api: Api) -> None:
    weight = COSTS["Query.products(filter.search)"].weight
    assert weight is not None
    plain = await api.query("{ products(first: 1) { nodes { id } } }")
    searched = await api.query(SEARCH.replace("filter:", "first: 1, filter:"), {"s": "oak"})

    cost = searched["extensions"]["cost"]["requestedQueryCost"]
    assert cost == plain["extensions"]["cost"]["requestedQueryCost"] + 1 + weight


# Control characters -------------------------------------------------------------------


@pytest.mark.parametrize("character", ["\x00", "\x01", "\x1b", "\x1f", "\x7f"])
@pytest.mark.usefixtures("no_error_logs")
async def test_control_characters_in_a_search_variable(api: Api, character: str) -> None:
    response = await api.post(SEARCH, {"s": f"oak{character}"})

    assert response.status_code == 400
    _bad_input(response.json(), "s")
    assert f"U+{ord(character):04X}" in _error(response.json())["message"]
    assert api.statements == []


@pytest.mark.usefixtures("no_error_logs")
async def test_tab_newline_and_carriage_return_are_allowed(api: Api) -> None:
    body = await api.query(SEARCH, {"s": "a\tb\nc\rd"})
    assert body["data"]["products"]["totalCount"] == 0


@pytest.mark.parametrize(
    ("query", "field"),
    [
        (r'{ products(filter: { search: "oak\u0000" }) { totalCount } }', "filter.search"),
        (r'{ product(sku: "A\u0000") { name } }', "sku"),
        ('{ product(sku: """A\x01""") { name } }', "sku"),
        (r'{ nodes(ids: ["x", "y\u0002"]) { id } }', "ids[1]"),
        (
            r'query($s: String = "\u0000") { products(filter: { search: $s }) { totalCount } }',
            "s",
        ),
    ],
)
@pytest.mark.usefixtures("no_error_logs")
async def test_control_characters_in_literals(api: Api, query: str, field: str) -> None:
    response = await api.post(query, headers={"Accept": GRAPHQL_RESPONSE_JSON})

    assert response.status_code == 400
    _bad_input(response.json(), field)
    assert api.statements == []


@pytest.mark.usefixtures("no_error_logs")
async def test_control_characters_in_a_sku_variable(api: Api) -> None:
    response = await api.post(SKU, {"sku": "\x00"})
    assert response.status_code == 400
    _bad_input(response.json(), "sku")


CREATE = "mutation($input: CreateProductInput!) { createProduct(input: $input) { id } }"
REVIEW = "mutation($input: AddReviewInput!) { addReview(input: $input) { id } }"


@pytest.mark.usefixtures("no_error_logs")
async def test_control_characters_in_mutation_inputs_change_nothing(api: Api, factory: Any) -> None:
    category = await factory.category()
    product = await factory.product(category_id=category)
    admin = await api.token("admin@example.com", role="admin")
    customer = await api.token("customer@example.com")
    before = await snapshot(api.db)
    new_product = {
        "sku": "NEW-1",
        "name": "Lamp\x00",
        "priceCents": 100,
        "categoryId": to_global_id("Category", category),
    }
    review = {"productId": to_global_id("Product", product), "rating": 5, "body": "ok\x00"}
    literal = (
        'mutation { createProduct(input: { sku: "NEW-2", name: "Lamp\\u0000", priceCents: 1,'
        f' categoryId: "{to_global_id("Category", category)}" }}) {{ id }} }}'
    )

    review_literal = (
        f'mutation {{ addReview(input: {{ productId: "{to_global_id("Product", product)}",'
        ' rating: 4, body: "fine\\u0000" }) { id } }'
    )

    created = await api.post(CREATE, {"input": new_product}, token=admin)
    reviewed = await api.post(REVIEW, {"input": review}, token=customer)
    inline = await api.post(literal, token=admin)
    inline_review = await api.post(review_literal, token=customer)

    _bad_input(created.json(), "input.name")
    _bad_input(reviewed.json(), "input.body")
    _bad_input(inline.json(), "input.name")
    _bad_input(inline_review.json(), "input.body")
    assert await snapshot(api.db) == before


# Nesting of variables and cursors ---------------------------------------------------------


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


@pytest.mark.parametrize("levels", [MAX_VARIABLE_DEPTH + 1, 300])
@pytest.mark.usefixtures("no_error_logs")
async def test_an_unused_variable_nested_too_deeply_is_bad_input(api: Api, levels: int) -> None:
    deep: Any = [0]
    for _ in range(levels - 1):
        deep = [deep]
    assert _depth(deep) == levels

    response = await api.post(
        "{ categories { id } }", {"unused": deep}, headers={"Accept": GRAPHQL_RESPONSE_JSON}
    )

    assert response.status_code == 400
    _bad_input(response.json(), "unused")
    assert f"more than {MAX_VARIABLE_DEPTH} levels" in _error(response.json())["message"]


async def test_a_variable_at_the_depth_limit_is_accepted(api: Api) -> None:
    deep: Any = {"search": "oak"}
    for _ in range(MAX_VARIABLE_DEPTH - 1):
        deep = [deep]
    assert _depth(deep) == MAX_VARIABLE_DEPTH

    body = await api.query("{ categories { id } }", {"unused": deep})

    assert body == {"data": {"categories": []}, "extensions": body["extensions"]}


def _cursor(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "raw",
    [
        "[" * 30_000 + "]" * 30_000,  # too long to decode at all
        "[" * 1_200 + "]" * 1_200,  # short enough, deeper than orjson nests
        '["newest",' + "[" * 900 + "]" * 900 + ",1]",
        json.dumps({"a": 1, "b": 2, "c": 3}),
        '["newest", "2026-01-01T00:00:00+00:00", 1.5]',
        "not json",
    ],
)
@pytest.mark.usefixtures("no_error_logs")
async def test_a_malformed_or_deeply_nested_cursor_is_bad_input(api: Api, raw: str) -> None:
    query = "query($after: String) { products(after: $after) { totalCount } }"
    body = await api.query(query, {"after": _cursor(raw)})

    _bad_input(body, "after")
    assert body["data"] is None  # `products` is non-null
