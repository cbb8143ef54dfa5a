"""The request pipeline without HTTP: what a transport hands in, and the facts it gets back."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest_asyncio

from resolvers.viewer import ANONYMOUS, Viewer
from schema.cost import CostAnalysis
from server.cache.cached_response import CacheState
from server.persisted.queries import ClientInfo
from server.pipeline.request import GraphQLRequest, OperationRequest, Prepared, Result
from server.pipeline.run import prepare, refusal, run, run_batch
from server.services import Services, open_services
from server.settings import Settings
from tests.conftest import Database
from tests.factories import Factory

CATEGORIES = "{ categories { name } }"


async def anonymous() -> Viewer:
    return ANONYMOUS


def operation(query: str, **facts: Any) -> OperationRequest:
    return OperationRequest(
        graphql=GraphQLRequest(query, None, None, None),
        viewer=anonymous,
        client_ip="203.0.113.7",
        client=ClientInfo(),
        **facts,
    )


def answer(result: Result) -> Any:
    return orjson.loads(result.content())


def cache_state(result: Result) -> CacheState | None:
    """X-Cache's fact: how the result cache answered (None: it was not asked)."""
    return None if result.served is None else result.served.state


@pytest_asyncio.fixture
async def services(db: Database) -> AsyncIterator[Services]:
    async with open_services(db.settings) as services:
        yield services


@pytest_asyncio.fixture
async def cached(db: Database) -> AsyncIterator[Services]:
    settings = Settings.from_env({"DATABASE_URL": db.url, "CACHE_ENABLED": "true"})
    async with open_services(settings) as services:
        yield services


def test_the_pipeline_loads_no_transport() -> None:
    # import-linter sees direct imports; this sees everything the import pulls in.
    code = (
        "import sys, server.pipeline.run\n"
        "print(sorted(m for m in sys.modules if m.startswith(('starlette', 'uvicorn'))))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert loaded.strip() == "[]"


async def test_a_query_runs_and_says_what_it_cost(services: Services, factory: Factory) -> None:
    await factory.category(name="Lamps")
    result = await run(operation(CATEGORIES), services=services)
    body = answer(result)
    assert result.status == 200
    assert body["data"] == {"categories": [{"name": "Lamps"}]}
    assert body["extensions"]["cost"]["requestedQueryCost"] >= 1
    assert (cache_state(result), result.bypassed_cache) == (None, False)  # the cache is off
    assert "RateLimit-Remaining" in result.headers
    assert result.after is not None
    await result.after()  # the refund of what was reserved and not spent


async def test_through_the_cache_a_hit_answers_what_the_miss_executed(
    cached: Services, factory: Factory, db: Database
) -> None:
    await factory.category(name="Lamps")
    miss = await run(operation(CATEGORIES), services=cached)
    db.statements.clear()
    hit = await run(operation(CATEGORIES), services=cached)
    assert (cache_state(miss), cache_state(hit)) == (CacheState.MISS, CacheState.HIT)
    assert db.statements == []
    assert answer(hit)["data"] == answer(miss)["data"] == {"categories": [{"name": "Lamps"}]}
    fresh = await run(operation(CATEGORIES, fresh=True), services=cached)
    assert cache_state(fresh) is CacheState.MISS
    mutation = await run(operation("mutation { __typename }"), services=cached)
    assert (cache_state(mutation), mutation.bypassed_cache) == (None, True)


async def test_without_mutations_allowed_a_mutation_is_refused_before_it_runs(
    services: Services, db: Database
) -> None:
    db.statements.clear()
    result = await run(
        operation("mutation { __typename }", allow_mutations=False), services=services
    )
    assert (result.status, result.headers) == (405, {"Allow": "POST"})
    assert answer(result)["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert db.statements == []


async def test_a_dry_run_prices_and_runs_nothing(services: Services, db: Database) -> None:
    db.statements.clear()
    result = await run(operation(CATEGORIES, dry_run=True), services=services)
    body = answer(result)
    assert body["data"] is None
    assert body["extensions"]["cost"]["requestedQueryCost"] >= 1
    assert db.statements == []


async def test_validation_failures_say_which_status_rule_applies(services: Services) -> None:
    invalid = await run(operation("{ nope }"), services=services)
    assert (invalid.status, invalid.validation_failed) == (400, True)
    bad_input = await run(
        operation("query($id: ID!) { product(id: $id) { name } }"), services=services
    )
    assert (bad_input.status, bad_input.validation_failed) == (400, False)


async def test_a_batch_over_the_maximum_in_total_runs_none_of_its_entries(
    services: Services, db: Database
) -> None:
    priced = await prepare(operation(CATEGORIES), services=services)
    assert isinstance(priced, Prepared)
    single = priced.price.requested
    # Each entry may cost this much alone; two of them together may not.
    tight = CostAnalysis(services.executor.schema, max_cost=2 * single - 1)
    services = dataclasses.replace(services, cost_analysis=tight)
    bad = refusal("The entry is not a GraphQL request.", "BAD_USER_INPUT", 400)
    db.statements.clear()
    results = await run_batch(
        [operation(CATEGORIES), bad, operation(CATEGORIES)], services=services
    )
    assert results[1] is bad
    for refused in (results[0], results[2]):
        body = answer(refused)
        assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
        assert body["extensions"]["cost"]["requestedQueryCost"] == 2 * single
    assert db.statements == []
