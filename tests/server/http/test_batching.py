"""Query batching through HTTP: a JSON array in, an array of results out, in order."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import Api, Database
from tests.factories import Factory
from tests.transport_support import (
    GQL_JSON,
    STORES,
    app_api,
    codes,
    hash_only,
    payload,
    register,
    store_env,
)

COUNT = "query Count { products { totalCount } }"
NAMES = "query Names($n: Int!) { products(first: $n) { nodes { name } } }"


@pytest.fixture(params=STORES)
async def api(db: Database, request: pytest.FixtureRequest) -> AsyncIterator[Api]:
    async with store_env(request.param) as env, app_api(db, {**env, "MAX_BATCH": "4"}) as api:
        yield api


async def batch(api: Api, payload: object) -> object:
    return await api.client.post("/graphql", json=payload, headers={"Accept": GQL_JSON})


async def test_each_operation_gets_its_own_result_persisted_and_plain_mixed(
    api: Api, factory: Factory
) -> None:
    await factory.product(name="Kettle")

    response = await batch(
        api,
        [
            {"query": COUNT},
            register(NAMES, variables={"n": 1}),
            hash_only(NAMES, variables={"n": 5}),
            hash_only("{ never { registered } }"),
        ],
    )

    assert response.status_code == 200
    assert response.headers["content-type"].startswith(GQL_JSON)
    first, second, third, fourth = payload(response)
    assert first == {"data": {"products": {"totalCount": 1}}}
    assert second == {"data": {"products": {"nodes": [{"name": "Kettle"}]}}}
    # Every entry is resolved before any runs, and a registration is stored only once its
    # operation was charged: the hash is known from the next request on.
    assert codes(third) == ["PERSISTED_QUERY_NOT_FOUND"]
    assert codes(fourth) == ["PERSISTED_QUERY_NOT_FOUND"]
    again = payload(await batch(api, [hash_only(NAMES, variables={"n": 5})]))
    assert again == [second]


async def test_a_bad_entry_fails_only_its_own_slot(api: Api) -> None:
    response = await batch(
        api, [{"query": COUNT}, {"nope": 1}, 42, {"query": "{ products { colour } }"}]
    )

    assert response.status_code == 200
    results = payload(response)
    assert results[0] == {"data": {"products": {"totalCount": 0}}}
    assert codes(results[1]) == ["BAD_USER_INPUT"]
    assert "JSON object" in results[2]["errors"][0]["message"]
    assert codes(results[3]) == ["GRAPHQL_VALIDATION_FAILED"]
    assert "data" not in results[3]


@pytest.mark.parametrize("size", [5, 1000])
async def test_a_batch_over_max_batch_is_413_and_runs_nothing(api: Api, size: int) -> None:
    api.statements.clear()

    response = await batch(api, [{"query": COUNT}] * size)

    assert response.status_code == 413
    message = payload(response)["errors"][0]["message"]
    assert f"at most 4 operations; this one has {size}" in message
    assert api.statements == []


async def test_an_empty_batch_is_400(api: Api) -> None:
    response = await batch(api, [])

    assert response.status_code == 400
    assert "empty" in payload(response)["errors"][0]["message"]


async def test_operations_run_in_order_so_a_batch_may_write_then_read(
    api: Api, factory: Factory
) -> None:
    product = await factory.product(name="Old", price_cents=100)
    token = await api.token("admin@example.com", role="admin")
    from schema.global_id import to_global_id

    product_id = to_global_id("Product", product)
    write = 'mutation($id: ID!) { updateProduct(id: $id, input: {name: "New"}) { name } }'
    read = "query($id: ID!) { node(id: $id) { ... on Product { name } } }"

    response = await api.client.post(
        "/graphql",
        json=[
            {"query": write, "variables": {"id": product_id}},
            {"query": read, "variables": {"id": product_id}},
        ],
        headers={"Authorization": f"Bearer {token}"},
    )

    assert payload(response) == [
        {"data": {"updateProduct": {"name": "New"}}},
        {"data": {"node": {"name": "New"}}},
    ]


async def test_a_batch_is_priced_as_a_whole(db: Database) -> None:
    async with app_api(db, {"MAX_QUERY_COST": "10"}) as api:
        single = await batch(api, [{"query": NAMES, "variables": {"n": 4}}])
        assert payload(single)[0] == {"data": {"products": {"nodes": []}}}
        api.statements.clear()

        response = await batch(api, [{"query": NAMES, "variables": {"n": 4}}] * 3)

        assert response.status_code == 200
        results = payload(response)
        assert [codes(r) for r in results] == [["QUERY_TOO_COMPLEX"]] * 3
        assert "the maximum is 10" in results[0]["errors"][0]["message"]
        assert api.statements == []  # nothing ran


async def test_a_bad_token_fails_the_whole_batch_with_401(api: Api) -> None:
    response = await api.client.post(
        "/graphql",
        json=[{"query": COUNT}, {"query": COUNT}],
        headers={"Authorization": "Bearer nope"},
    )

    assert response.status_code == 401
    assert codes(payload(response)) == ["UNAUTHENTICATED"]
