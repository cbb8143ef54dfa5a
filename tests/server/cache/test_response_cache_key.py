"""The response cache's key is built from the coerced variables only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from schema.global_id import to_global_id
from tests.cache_support import CACHE_BACKENDS, cached_app
from tests.conftest import Api, Database
from tests.factories import Factory

PRODUCT = (
    "query($id: ID!, $n: Int = 3) { product(id: $id) { name reviews(first: $n) { totalCount } } }"
)


@pytest_asyncio.fixture(params=CACHE_BACKENDS)
async def api(request: pytest.FixtureRequest, db: Database) -> AsyncIterator[Api]:
    async with cached_app(db, request.param) as api:
        yield api


def _nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"a": value}
    return value


async def test_requests_that_mean_the_same_share_one_entry(api: Api, factory: Factory) -> None:
    product = to_global_id("Product", await factory.product(name="Lamp"))
    first = await api.post(PRODUCT, {"id": product})
    assert first.headers["x-cache"] == "MISS"
    # An unused variable and an explicit default change nothing the operation sees.
    for variables in ({"id": product, "unused": [1, 2, 3]}, {"id": product, "n": 3}):
        again = await api.post(PRODUCT, variables)
        assert again.headers["x-cache"] == "HIT", variables
        assert again.json()["data"] == first.json()["data"]
    other = await api.post(PRODUCT, {"id": product, "n": 4})
    assert other.headers["x-cache"] == "MISS"


async def test_a_deeply_nested_unused_variable_is_refused_not_a_server_error(
    api: Api, factory: Factory
) -> None:
    product = to_global_id("Product", await factory.product(name="Lamp"))
    response = await api.post(PRODUCT, {"id": product, "unused": _nested(300)})
    assert response.status_code == 400, response.text
    error = response.json()["errors"][0]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "unused", "maximum": 20}
