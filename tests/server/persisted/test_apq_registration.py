"""APQ registration through HTTP, on the in-process store and on Redis: it happens only
once the request was charged, and what a client can make the store keep is bounded."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from server.persisted.protocol import sha256_hex
from tests.conftest import Api, Database
from tests.transport_support import (
    STORES,
    app_api,
    codes,
    get_params,
    hash_only,
    payload,
    register,
    store_env,
)

DATA = {"data": {"products": {"totalCount": 0}}}
TWO = "{ products(first: 0) { totalCount } }"  # costs 2


def query(name: str) -> str:
    return f"query {name} {{ products(first: 0) {{ totalCount }} }}"


@pytest.fixture(params=STORES)
async def env(request: pytest.FixtureRequest) -> AsyncIterator[dict[str, str]]:
    async with store_env(request.param) as settings:
        yield {
            **settings,
            "TRUSTED_PROXIES": "127.0.0.1",
            "APQ_MAX_DOCUMENT_BYTES": "200",
            "APQ_REGISTRATIONS_PER_CLIENT": "2",
        }


@pytest.fixture
async def api(db: Database, env: dict[str, str]) -> AsyncIterator[Api]:
    async with app_api(db, env) as api:
        yield api


async def post(api: Api, body: Any, client: str = "198.51.100.1", **headers: str) -> Any:
    return await api.client.post(
        "/graphql", json=body, headers={"X-Forwarded-For": client, **headers}
    )


async def stored(api: Api, text: str) -> bool:
    """Whether the store holds `text`, and a hash-only request (as another client) runs it."""
    held = await api.services.persisted_queries.store.get_automatic(sha256_hex(text))
    found = codes(payload(await post(api, hash_only(text), client="198.51.100.99")))
    assert (held is not None) == (found == []), (held, found)
    return held is not None


async def test_a_document_over_the_byte_cap_runs_but_is_not_stored(api: Api) -> None:
    padded = query("Big") + " " * 200  # over APQ_MAX_DOCUMENT_BYTES=200, still valid
    assert len(padded.encode()) > 200

    response = await post(api, register(padded))

    assert payload(response) == DATA
    assert not await stored(api, padded)
    response = await post(api, hash_only(padded))
    assert codes(payload(response)) == ["PERSISTED_QUERY_NOT_FOUND"]  # the client resends it
    assert payload(await post(api, register(query("Small")))) == DATA
    assert await stored(api, query("Small"))  # one under the cap is


async def test_a_rate_limited_request_registers_nothing(db: Database, env: dict[str, str]) -> None:
    limits = {"RATE_LIMIT_MAXIMUM": "4", "RATE_LIMIT_RESTORE_RATE": "0.01"}
    async with app_api(db, {**env, **limits}) as api:
        for _ in range(2):
            assert (await post(api, {"query": TWO})).status_code == 200

        refused = await post(api, register(query("Limited")))

        assert refused.status_code == 429
        assert not await stored(api, query("Limited"))


async def test_a_mutation_over_get_registers_nothing(api: Api) -> None:
    mutation = 'mutation Cancel { cancelOrder(id: "T3JkZXI6MQ==") { id } }'

    refused = await api.client.get("/graphql", params=get_params(register(mutation)))

    assert refused.status_code == 405
    assert await api.services.persisted_queries.store.get_automatic(sha256_hex(mutation)) is None
    response = await post(api, hash_only(mutation))
    assert codes(payload(response)) == ["PERSISTED_QUERY_NOT_FOUND"]


async def test_a_dry_run_registers_nothing(api: Api) -> None:
    response = await post(api, register(query("Dry")), **{"X-Cost-Dry-Run": "1"})

    assert response.json()["data"] is None
    assert not await stored(api, query("Dry"))


async def test_each_client_registers_at_most_its_quota_per_window(api: Api) -> None:
    first, second, third = query("One"), query("Two"), query("Three")
    for text in (first, second, third):
        assert payload(await post(api, register(text))) == DATA  # every one runs

    assert await stored(api, first)
    assert await stored(api, second)
    assert not await stored(api, third)  # over the quota of 2: not stored
    assert payload(await post(api, register(first))) == DATA  # known: costs no quota

    assert payload(await post(api, register(third), client="198.51.100.2")) == DATA
    assert await stored(api, third)  # another client still can
