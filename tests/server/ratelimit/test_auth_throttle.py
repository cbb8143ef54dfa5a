"""Failed authentications: unknown tokens remembered briefly, 401s drain a small bucket
per address (then 429), and no operation is free."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from server.ratelimit.buckets import KEY_PREFIX
from tests.conftest import Api, Database
from tests.factories import Factory
from tests.server.apps import serve

QUERY = "{ categories { name } }"
ADDRESS_KEY = KEY_PREFIX + "authfail:ip:127.0.0.1"  # httpx's ASGI client address


@pytest_asyncio.fixture(params=["memory", "redis"])
async def api(request: pytest.FixtureRequest, db: Database) -> AsyncIterator[Api]:
    env = {"AUTH_FAILURE_LIMIT": "3", "AUTH_FAILURE_RESTORE_RATE": "0.001"}
    if request.param == "memory":
        async with serve(db, **env) as api:
            yield api
        return
    from redis.asyncio import Redis

    redis_url = request.getfixturevalue("redis_url")
    redis = Redis.from_url(redis_url)
    await redis.delete(ADDRESS_KEY)
    try:
        async with serve(db, REDIS_URL=redis_url, **env) as api:
            yield api
    finally:
        await redis.delete(ADDRESS_KEY)
        await redis.aclose()


def _token_lookups(api: Api) -> int:
    return sum("api_tokens" in s for s in api.statements)


async def test_an_unknown_token_is_looked_up_once_then_remembered(api: Api) -> None:
    for _ in range(2):
        response = await api.post(QUERY, token="sf_unknown")
        assert response.status_code == 401
        assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert _token_lookups(api) == 1


async def test_failed_authentications_drain_a_bucket_per_address_then_429(
    api: Api, factory: Factory
) -> None:
    await factory.user(email="known@example.com")
    token = await api.token("known@example.com")
    assert (await api.post(QUERY, token=token)).status_code == 200  # a success costs nothing
    for attempt in range(3):
        response = await api.post(QUERY, token=f"sf_guess-{attempt}")
        assert response.status_code == 401
    lookups = _token_lookups(api)
    refused = await api.post(QUERY, token="sf_guess-4")
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    assert _token_lookups(api) == lookups  # refused before any lookup
    # A viewer the process already knows is not held up by the address's failures;
    # anonymous requests are not either.
    assert (await api.post(QUERY, token=token)).status_code == 200
    assert (await api.post(QUERY)).status_code == 200


async def test_a_batch_with_a_throttled_address_is_429(api: Api) -> None:
    for attempt in range(3):
        await api.post(QUERY, token=f"sf_guess-{attempt}")
    response = await api.client.post(
        "/graphql",
        json=[{"query": QUERY}, {"query": QUERY}],
        headers={"Authorization": "Bearer sf_guess-9"},
    )
    assert response.status_code == 429


async def test_every_operation_costs_at_least_one(db: Database) -> None:
    env = {"RATE_LIMIT_MAXIMUM": "3", "RATE_LIMIT_RESTORE_RATE": "0.001"}
    async with serve(db, **env) as api:
        answers: list[Any] = [await api.post("{ __typename }") for _ in range(4)]
    costs = [a.json()["extensions"]["cost"] for a in answers[:3]]
    assert [c["requestedQueryCost"] for c in costs] == [1, 1, 1]
    assert [c["actualQueryCost"] for c in costs] == [1, 1, 1]
    assert [c["throttleStatus"]["currentlyAvailable"] for c in costs] == [2, 1, 0]
    assert answers[3].status_code == 429


async def test_a_burst_of_signed_in_requests_is_one_lookup_and_never_throttled(
    api: Api, factory: Factory
) -> None:
    await factory.user(email="busy@example.com")
    token = await api.token("busy@example.com")
    answers = await asyncio.gather(*(api.post(QUERY, token=token) for _ in range(30)))
    assert {a.status_code for a in answers} == {200}
    assert _token_lookups(api) == 1


DASHBOARD = """{ orders(first: 50) { nodes { id totalCents customer { name email }
  items { quantity product { name } } } } }"""


async def test_a_request_refused_before_reading_is_charged_what_it_ran(db: Database) -> None:
    env = {"RATE_LIMIT_MAXIMUM": "2000", "RATE_LIMIT_RESTORE_RATE": "0.001"}
    async with serve(db, **env) as api:
        answers = [await api.post(DASHBOARD) for _ in range(5)]  # forgot the token
    for answer in answers:
        assert answer.status_code == 200
        assert answer.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    costs = [a.json()["extensions"]["cost"] for a in answers]
    assert all(c["requestedQueryCost"] > 500 for c in costs)
    assert {c["actualQueryCost"] for c in costs} == {1}
    assert costs[-1]["throttleStatus"]["currentlyAvailable"] == 2000 - 5


async def test_a_refused_sibling_cannot_make_a_query_that_read_free(
    db: Database, factory: Factory
) -> None:
    await factory.product(name="Lamp")
    query = "{ products(first: 50) { nodes { name } } orders(first: 1) { totalCount } }"
    async with serve(db, RATE_LIMIT_RESTORE_RATE="0.001") as api:
        body = (await api.post(query)).json()
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    cost = body["extensions"]["cost"]
    assert cost["actualQueryCost"] == cost["requestedQueryCost"] > 50
