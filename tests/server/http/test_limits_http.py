"""Document limits and cost through HTTP: each at its boundary, and nothing runs when refused."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from graphql import Lexer, Source, TokenKind, get_introspection_query
from sqlalchemy import text

from tests.conftest import Api, Database
from tests.factories import Factory
from tests.server.apps import serve

GQL_JSON = "application/graphql-response+json"


async def passes(api: Api, query: str, variables: dict[str, Any] | None = None) -> Any:
    response = await api.post(query, variables, headers={"Accept": GQL_JSON})
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body["errors"]
    return body


async def refused(
    api: Api, query: str, variables: dict[str, Any] | None = None, *, code: str
) -> dict[str, Any]:
    """Posts a request that must fail before execution; its first error's extensions."""
    api.statements.clear()
    response = await api.post(query, variables, headers={"Accept": GQL_JSON})
    assert response.status_code == 400, response.text
    body = response.json()
    assert "data" not in body
    assert body["errors"][0]["extensions"]["code"] == code, body
    assert api.statements == []  # nothing executed, not even authentication
    extensions: dict[str, Any] = body["errors"][0]["extensions"]
    return extensions


def deep(levels: int) -> str:
    """`categories { parent { ... { name } } }`, `levels` fields deep."""
    return "{ categories { " + "parent { " * (levels - 2) + "name" + " }" * (levels - 1) + " }"


def aliased(count: int) -> str:
    return "{ " + " ".join(f"a{i}: __typename" for i in range(count)) + " }"


def with_directives(count: int) -> str:
    return "{ " + " ".join("__typename @skip(if: false)" for _ in range(count)) + " }"


def with_tokens(count: int) -> str:
    # `{ }`, 2 tokens per `...F` and 7 for `fragment F on Query { __typename }`. Spreads
    # pad cheaply: as many `__typename`s would exhaust graphql-core's overlap budget.
    spreads, odd = divmod(count - 9, 2)
    query = "{ " + "__typename " * odd + "...F " * spreads + "} fragment F on Query { __typename }"
    assert tokens(query) == count
    return query


def tokens(query: str) -> int:
    lexer = Lexer(Source(query))
    count = 0
    while lexer.advance().kind is not TokenKind.EOF:
        count += 1
    return count


async def test_depth_boundary(api: Api) -> None:
    await passes(api, deep(10))
    assert await refused(api, deep(11), code="QUERY_TOO_DEEP") == {
        "code": "QUERY_TOO_DEEP",
        "limit": "depth",
        "maximum": 10,
        "actual": 11,
    }


async def test_aliases_boundary(api: Api) -> None:
    await passes(api, aliased(30))
    extensions = await refused(api, aliased(31), code="QUERY_TOO_COMPLEX")
    assert extensions["limit"] == "aliases"
    assert extensions["actual"] == 31


async def test_directives_boundary(api: Api) -> None:
    await passes(api, with_directives(50))
    extensions = await refused(api, with_directives(51), code="QUERY_TOO_COMPLEX")
    assert extensions["limit"] == "directives"


async def test_tokens_boundary(api: Api) -> None:
    await passes(api, with_tokens(2000))
    extensions = await refused(api, with_tokens(2001), code="QUERY_TOO_COMPLEX")
    assert extensions == {"code": "QUERY_TOO_COMPLEX", "limit": "tokens", "maximum": 2000}


async def test_limits_come_from_settings(db: Database) -> None:
    async with serve(db, MAX_QUERY_DEPTH="3", MAX_QUERY_ALIASES="1", MAX_QUERY_TOKENS="30") as api:
        await passes(api, deep(3))
        await refused(api, deep(4), code="QUERY_TOO_DEEP")
        await passes(api, "{ a: __typename __typename }")
        await refused(api, "{ a: __typename b: __typename }", code="QUERY_TOO_COMPLEX")
        await passes(api, with_tokens(30))
        await refused(api, with_tokens(31), code="QUERY_TOO_COMPLEX")


async def test_limit_errors_follow_the_validation_statuses(api: Api) -> None:
    # application/json keeps 200 for a well-formed request that is refused, as for validation.
    response = await api.post(deep(11), headers={"Accept": "application/json"})
    assert response.status_code == 200
    assert response.json()["errors"][0]["extensions"]["code"] == "QUERY_TOO_DEEP"


# The body ------------------------------------------------------------------------


def body_of_size(size: int) -> bytes:
    head = b'{"query": "{ __typename }"'
    return head + b" " * (size - len(head) - 1) + b"}"


async def test_body_size_boundary(api: Api) -> None:
    headers = {"Content-Type": "application/json"}
    fits = await api.client.post("/graphql", content=body_of_size(102_400), headers=headers)
    assert fits.status_code == 200
    assert fits.json()["data"] == {"__typename": "Query"}
    api.statements.clear()
    too_large = await api.client.post("/graphql", content=body_of_size(102_401), headers=headers)
    assert too_large.status_code == 413
    assert too_large.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "x-request-id" in too_large.headers
    assert api.statements == []


async def test_a_chunked_body_is_cut_off_at_the_limit(db: Database) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b" " * 100

    async with serve(db, MAX_REQUEST_BYTES="500") as api:
        response = await api.client.post(
            "/graphql", content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 413
        assert "500 bytes" in response.json()["errors"][0]["message"]


# Cost ----------------------------------------------------------------------------

# 9 x (1 + 100) + (1 + $n): costs exactly 1000 at n = 90.
EXPENSIVE = (
    "query($n: Int) { "
    + " ".join(f"p{i}: products(first: 100) {{ nodes {{ id }} }}" for i in range(9))
    + " last: products(first: $n) { nodes { id } } }"
)


async def test_cost_boundary(api: Api) -> None:
    body = await passes(api, EXPENSIVE, {"n": 90})
    assert body["extensions"]["cost"]["requestedQueryCost"] == 1000
    extensions = await refused(api, EXPENSIVE, {"n": 91}, code="QUERY_TOO_COMPLEX")
    assert extensions["cost"] == {"requestedQueryCost": 1001, "maximumQueryCost": 1000}


async def test_cost_is_priced_from_variables_before_execution(api: Api) -> None:
    # `first` over 100 is also BAD_USER_INPUT at execution; the cost refuses it first.
    query = "query($n: Int) { products(first: $n) { nodes { id } } }"
    extensions = await refused(api, query, {"n": 100_000}, code="QUERY_TOO_COMPLEX")
    assert extensions["cost"]["requestedQueryCost"] == 100_001
    response = await api.post(query, {"n": 100_000}, headers={"Accept": GQL_JSON})
    assert response.json()["extensions"] == {
        "cost": {"requestedQueryCost": 100_001, "actualQueryCost": 0}
    }


async def test_aliases_of_one_expensive_field_add_up(api: Api) -> None:
    query = "{ " + " ".join(f"a{i}: products(first: 100) {{ nodes {{ id }} }}" for i in range(10))
    extensions = await refused(api, query + " }", code="QUERY_TOO_COMPLEX")
    assert extensions["cost"]["requestedQueryCost"] == 1010


async def test_a_fragment_spread_many_times_counts_every_time(api: Api) -> None:
    spreads = " ".join("...N" for _ in range(5))
    query = (
        f"{{ products(first: 100) {{ {spreads} }} }} "
        "fragment N on ProductConnection { nodes { category { id } } }"
    )
    extensions = await refused(api, query, code="QUERY_TOO_COMPLEX")
    assert extensions["cost"]["requestedQueryCost"] == 1 + 5 * 100 * 2


async def test_fragments_doubling_each_other_are_priced_not_expanded(api: Api) -> None:
    levels = 30
    fragments = " ".join(
        f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels)
    )
    query = f"{{ ...F0 }} {fragments} fragment F{levels} on Query {{ categories {{ id }} }}"
    extensions = await refused(api, query, code="QUERY_TOO_COMPLEX")
    assert extensions["cost"]["requestedQueryCost"] == 2**levels * 50


async def test_deeply_nested_fragments_are_too_deep(api: Api) -> None:
    chain = " ".join(f"fragment F{i} on Category {{ parent {{ ...F{i + 1} }} }}" for i in range(9))
    query = f"{{ categories {{ ...F0 }} }} {chain} fragment F9 on Category {{ name }}"
    extensions = await refused(api, query, code="QUERY_TOO_DEEP")
    assert extensions["actual"] == 11


async def test_every_answer_carries_its_cost(api: Api, factory: Factory) -> None:
    for _ in range(3):
        await factory.product()
    response = await api.post("{ products(first: 10) { nodes { name category { name } } } }")
    assert response.status_code == 200
    cost = response.json()["extensions"]["cost"]
    assert cost["requestedQueryCost"] == 1 + 10 * 2
    assert cost["actualQueryCost"] == 1 + 3 * 2
    throttle = cost["throttleStatus"]
    assert throttle["maximumAvailable"] == 2000
    assert throttle["restoreRate"] == 100
    # The 14 reserved but not used came back at once.
    assert 2000 - 7 <= throttle["currentlyAvailable"] <= 2000
    assert response.headers["ratelimit-limit"] == "2000"
    assert response.headers["ratelimit-remaining"] == str(throttle["currentlyAvailable"])
    assert int(response.headers["ratelimit-reset"]) in (0, 1)


async def test_admins_have_their_own_bucket_size(api: Api) -> None:
    token = await api.token("boss@example.com", role="admin")
    response = await api.post("{ viewer { name } }", token=token)
    throttle = response.json()["extensions"]["cost"]["throttleStatus"]
    assert throttle["maximumAvailable"] == 20_000
    assert throttle["restoreRate"] == 1000


async def test_dry_run_prices_without_running(api: Api) -> None:
    api.statements.clear()
    query = "query($n: Int) { products(first: $n) { nodes { id } } }"
    response = await api.post(query, {"n": 50}, headers={"X-Cost-Dry-Run": "1"})
    assert response.status_code == 200
    body = response.json()
    assert body["data"] is None
    assert body["extensions"]["cost"] == {
        "requestedQueryCost": 51,
        "actualQueryCost": 0,
        "throttleStatus": {
            "maximumAvailable": 2000,
            "currentlyAvailable": 2000,
            "restoreRate": 100.0,
        },
    }
    assert api.statements == []
    mutation = 'mutation { cancelOrder(id: "T3JkZXI6MQ==") { id status } }'
    body = (await api.post(mutation, headers={"X-Cost-Dry-Run": "true"})).json()
    assert body["extensions"]["cost"]["requestedQueryCost"] == 10
    assert api.statements == []


# Introspection ---------------------------------------------------------------------


async def test_graphiql_introspection_fits_the_default_limits(api: Api) -> None:
    body = await passes(api, get_introspection_query(descriptions=True))
    assert body["data"]["__schema"]["queryType"]["name"] == "Query"
    # Suggestions are shown while introspection is on.
    response = await api.post("{ prodcts { totalCount } }")
    assert "Did you mean" in response.json()["errors"][0]["message"]


async def test_production_turns_introspection_and_suggestions_off(db: Database) -> None:
    async with serve(db, ENVIRONMENT="production") as api:
        response = await api.post("{ __schema { queryType { name } } }")
        assert response.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
        response = await api.post("{ prodcts { totalCount } }")
        assert "Did you mean" not in response.json()["errors"][0]["message"]
        response = await api.post(
            "query($s: ProductSort) { products(sort: $s) { totalCount } }", {"s": "NEWES"}
        )
        assert "Did you mean" not in response.json()["errors"][0]["message"]
        assert (await passes(api, "{ __typename }"))["data"] == {"__typename": "Query"}
    async with serve(db, ENVIRONMENT="production", INTROSPECTION="true") as api:
        await passes(api, "{ __schema { queryType { name } } }")


# Timeouts --------------------------------------------------------------------------


async def test_execution_timeout(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    from loaders import listings

    async def slow(*, sessionmaker: Any, **_kw: Any) -> Any:
        async with sessionmaker() as session:
            await session.execute(text("SELECT 1"))
            await asyncio.sleep(5)
        raise AssertionError("not cancelled")

    monkeypatch.setattr(listings, "all_categories", slow)
    async with serve(db, EXECUTION_TIMEOUT_MS="200") as api:
        response = await api.post("{ categories { name } }")
        assert response.status_code == 200
        body = response.json()
        assert body["data"] is None
        assert body["errors"][0]["extensions"]["code"] == "QUERY_TIMEOUT"
        assert "0.2 s" in body["errors"][0]["message"]
        cost = body["extensions"]["cost"]
        assert cost["actualQueryCost"] == cost["requestedQueryCost"] == 50
        await asyncio.sleep(0.05)
        assert api.services.engine.pool.checkedout() == 0  # the connection went back
        monkeypatch.undo()
        await passes(api, "{ categories { name } }")


async def test_a_timeout_mid_statement_leaves_the_pool_sound(
    db: Database, factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The compiled executor runs a level's batch in the operation's own task, so a
    timeout cancels that batch mid-statement: its connection must not go back to
    the pool still busy (asyncpg: "another operation is in progress"). One pooled
    connection, so the next requests read on whatever the cancelled one left."""
    from sqlalchemy import func, select

    from loaders import entities
    from loaders.batch import fetch, read_connection

    category = await factory.category(name="Lamps")
    await factory.product(name="Lamp", category_id=category)
    query = "{ products(first: 5) { nodes { name category { name } } } }"
    original = entities.fetch_all

    async def slow(sessionmaker: Any, statement: Any, params: Any) -> Any:
        async with read_connection(sessionmaker) as connection:
            if db.backend == "postgresql":
                await fetch(connection, select(func.pg_sleep(5)), {})
            else:
                await asyncio.sleep(5)
        raise AssertionError("not cancelled")

    settings = {"EXECUTION_TIMEOUT_MS": "300", "DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0"}
    async with serve(db, **settings) as api:
        await passes(api, query)
        monkeypatch.setattr(entities, "fetch_all", slow)
        response = await api.post(query)
        body = response.json()
        assert body["errors"][0]["extensions"]["code"] == "QUERY_TIMEOUT", body
        monkeypatch.setattr(entities, "fetch_all", original)
        for _ in range(3):
            body = await passes(api, query)
            assert body["data"]["products"]["nodes"][0]["category"] == {"name": "Lamps"}
        await asyncio.sleep(0.05)
        assert api.services.engine.pool.checkedout() == 0


async def test_statement_timeout(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    if db.backend != "postgresql":
        pytest.skip("statement_timeout is PostgreSQL's")
    from loaders import listings

    async def slow(*, sessionmaker: Any, **_kw: Any) -> Any:
        async with sessionmaker() as session:
            await session.execute(text("SELECT pg_sleep(5)"))
        raise AssertionError("not cancelled")

    monkeypatch.setattr(listings, "all_categories", slow)
    async with serve(db, DB_STATEMENT_TIMEOUT_MS="100") as api:
        response = await api.post("{ categories { name } }")
        assert response.status_code == 200
        error = response.json()["errors"][0]
        assert error["extensions"] == {"code": "QUERY_TIMEOUT"}
        assert "timed out" in error["message"]
        assert "pg_sleep" not in response.text
        assert api.services.engine.pool.checkedout() == 0
        async with api.services.engine.connect() as connection:
            timeout = await connection.execute(text("SHOW statement_timeout"))
            assert timeout.scalar_one() == "100ms"
        monkeypatch.undo()
        await passes(api, "{ categories { name } }")


def test_settings_are_documented_in_the_readme() -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    for name in (
        "MAX_REQUEST_BYTES",
        "MAX_QUERY_DEPTH",
        "MAX_QUERY_ALIASES",
        "MAX_QUERY_DIRECTIVES",
        "MAX_QUERY_TOKENS",
        "MAX_QUERY_COST",
        "INTROSPECTION",
        "RATE_LIMIT_ENABLED",
        "RATE_LIMIT_MAXIMUM",
        "RATE_LIMIT_RESTORE_RATE",
        "ADMIN_RATE_LIMIT_MAXIMUM",
        "ADMIN_RATE_LIMIT_RESTORE_RATE",
        "TRUSTED_PROXIES",
        "DB_STATEMENT_TIMEOUT_MS",
        "EXECUTION_TIMEOUT_MS",
        "REDIS_URL",
    ):
        assert f"| `{name}` |" in readme, name
