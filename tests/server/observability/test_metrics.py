"""`GET /metrics` through HTTP against the real app, on both backends: every family of
the contract with its type and labels, and the figures a request of each kind moves."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from schema.global_id import to_global_id
from server.observability.batch_observers import combine
from server.observability.metrics import CONTENT_TYPE, MAX_OPERATION_NAMES
from tests.cache_support import cached_app
from tests.conftest import Api, Database
from tests.deploy.metrics_contract import COPY, parse_metrics
from tests.factories import Factory
from tests.server.apps import serve
from tests.server.observability.metrics_scrape import Scrape

CATALOG = "query Catalog { categories { name products { nodes { name } } } }"
PRODUCT = "query Product($id: ID!) { product(id: $id) { name category { name } } }"
PLACE = """mutation Place($input: PlaceOrderInput!) {
  placeOrder(input: $input) { id status }
}"""
CONTRACT = parse_metrics(COPY.read_text())
# Families served beyond the contract's (one may add, never rename or remove), each with
# its type; the README's metrics table explains each.
ADDED = {"storefront_hit_path_answers_total": "counter"}
README = Path(__file__).resolve().parents[3] / "README.md"


async def scrape(api: Api) -> Scrape:
    response = await api.client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == CONTENT_TYPE
    return Scrape.parse(response.text)


async def shop(factory: Factory) -> int:
    category = await factory.category(name="Home")
    return int(await factory.product(name="Lamp", price_cents=1500, category_id=category))


async def test_every_contract_metric_is_served_with_its_type_and_labels(
    api: Api, factory: Factory
) -> None:
    await shop(factory)
    await api.data(CATALOG)
    await api.post("{ nope }")
    scraped = await scrape(api)

    served = {name for name in scraped.families if name.startswith("storefront_")}
    assert served == set(CONTRACT) | set(ADDED)
    for name, kind in ADDED.items():
        assert scraped.families[name].type == kind, name
        assert f"| `{name}` |" in README.read_text(), f"{name} is not in the README's table"
    metrics = api.services.metrics
    assert metrics is not None
    families = (getattr(metrics, f.name) for f in dataclasses.fields(metrics))
    declared = {f._name: f for f in families if hasattr(f, "_labelnames")}
    for name, metric in CONTRACT.items():
        family = scraped.families[name]
        assert family.type == metric.type, name
        # The labels every sample carries (a histogram's `le` aside) ...
        for sample in family.samples:
            assert set(sample.labels) - {"le"} == set(metric.labels), (name, sample)
            for label, allowed in metric.labels.items():
                assert allowed is None or sample.labels[label] in allowed, (name, sample)
        # ... and those declared, for families no request has moved yet.
        if name in declared or name.removesuffix("_total") in declared:
            family_object = declared.get(name) or declared[name.removesuffix("_total")]
            assert set(family_object._labelnames) == set(metric.labels), name
    assert scraped.label_values("storefront_db_pool_connections", "state") == {
        "idle",
        "in_use",
        "overflow",
    }
    assert scraped.label_values("storefront_subscriptions_active", "transport") == {"ws", "sse"}


async def test_a_query_counts_its_request_operation_statements_batches_and_cost(
    api: Api, factory: Factory
) -> None:
    await shop(factory)
    before = await scrape(api)
    statements = len(api.statements)
    await api.data(CATALOG)
    after = await scrape(api)
    sent = len(api.statements) - statements

    def moved(series: str, **labels: str) -> float:
        return after.value(series, **labels) - before.value(series, **labels)

    assert moved("storefront_http_requests_total", method="POST", status="200") == 1
    ok = {"operation_type": "query", "operation_name": "Catalog"}
    assert moved("storefront_graphql_operations_total", **ok, outcome="ok") == 1
    assert moved("storefront_graphql_operation_duration_seconds_count", **ok) == 1
    # Every statement of the request, each under the loader that sent it.
    assert moved("storefront_db_statements_total") == sent > 0
    assert moved("storefront_db_statement_duration_seconds_count") == sent
    pages = "products_page_by_category_id"
    assert moved("storefront_db_statements_total", loader=pages) == 1
    assert moved("storefront_dataloader_batch_size_count", loader=pages) == 1
    assert moved("storefront_dataloader_batch_size_sum", loader=pages) == 1
    assert moved("storefront_query_cost_count", kind="requested") == 1
    assert moved("storefront_query_cost_count", kind="actual") == 1
    assert moved("storefront_query_cost_sum", kind="requested") > 0
    # Scrapes are not GraphQL requests.
    assert moved("storefront_http_requests_total", method="GET") == 0
    assert after.value("storefront_db_pool_connections", state="in_use") == 0
    assert after.value("storefront_db_pool_connections", state="overflow") == 0


async def test_a_mutation_s_statements_count_as_mutation(api: Api, factory: Factory) -> None:
    lamp = await shop(factory)
    token = await api.token("cus@example.com")
    before = await scrape(api)
    line = {"productId": to_global_id("Product", lamp), "quantity": 1}
    body = await api.query(PLACE, {"input": {"lines": [line]}}, token=token)
    assert "errors" not in body, body
    after = await scrape(api)

    labels = {"operation_type": "mutation", "operation_name": "Place", "outcome": "ok"}
    assert after.value("storefront_graphql_operations_total", **labels) == 1
    written = after.value("storefront_db_statements_total", loader="mutation") - before.value(
        "storefront_db_statements_total", loader="mutation"
    )
    assert written > 0


async def test_errors_are_counted_by_code_and_refusals_as_rejected(api: Api) -> None:
    before = await scrape(api)
    invalid = await api.post("query Broken { nope }", operation_name="Broken")
    assert invalid.status_code == 200  # application/json keeps 200
    missing = await api.query("query Gone { product(id: 12) { name } }")
    after = await scrape(api)

    codes = {e["extensions"]["code"] for e in invalid.json()["errors"]}
    for code in codes:
        assert (
            after.value("storefront_graphql_errors_total", code=code)
            - before.value("storefront_graphql_errors_total", code=code)
            == 1
        )
    broken = {"operation_type": "query", "operation_name": "Broken", "outcome": "rejected"}
    assert after.value("storefront_graphql_operations_total", **broken) == 1
    # An id that does not decode: an execution error, with partial data.
    assert [e["extensions"]["code"] for e in missing["errors"]] == ["BAD_USER_INPUT"]
    assert after.value("storefront_graphql_errors_total", code="BAD_USER_INPUT") == 1
    gone = {"operation_type": "query", "operation_name": "Gone", "outcome": "error"}
    assert after.value("storefront_graphql_operations_total", **gone) == 1


async def test_429s_are_counted(db: Database) -> None:
    async with serve(db, RATE_LIMIT_MAXIMUM="4", RATE_LIMIT_RESTORE_RATE="0.01") as api:
        statuses = [(await api.post("query Cats { categories { name } }")).status_code]
        while statuses[-1] != 429 and len(statuses) < 20:
            statuses.append((await api.post("query Cats { categories { name } }")).status_code)
        statuses.append((await api.post("query Cats { categories { name } }")).status_code)
        scraped = await scrape(api)

    refused = statuses.count(429)
    assert refused >= 2
    assert scraped.value("storefront_rate_limited_total") == refused
    assert scraped.value("storefront_http_requests_total", status="429") == refused
    labels = {"operation_name": "Cats", "outcome": "rejected"}
    assert scraped.value("storefront_graphql_operations_total", **labels) == refused
    assert scraped.value("storefront_graphql_errors_total", code="RATE_LIMITED") == refused


async def test_response_and_entity_cache_lookups(db: Database, factory: Factory) -> None:
    lamp = await shop(factory)
    async with cached_app(db, "memory") as api:
        variables = {"id": to_global_id("Product", lamp)}
        await api.data(PRODUCT, variables)
        first = await scrape(api)
        await api.data(PRODUCT, variables)
        # Another document reading the same product: a miss above, an entity hit below.
        await api.data("query Again($id: ID!) { product(id: $id) { name } }", variables)
        second = await scrape(api)

    assert first.value("storefront_cache_requests_total", cache="response", result="miss") == 1
    assert first.value("storefront_cache_requests_total", cache="response", result="hit") == 0
    assert first.value("storefront_cache_requests_total", cache="entity", result="miss") >= 1
    assert second.value("storefront_cache_requests_total", cache="response", result="hit") == 1
    assert second.value("storefront_cache_requests_total", cache="response", result="miss") == 2
    assert second.value("storefront_cache_requests_total", cache="entity", result="hit") >= 1


async def test_persisted_query_miss_registration_and_hit(api: Api) -> None:
    query = "query Count { products { totalCount } }"
    sha = hashlib.sha256(query.encode()).hexdigest()
    reference: dict[str, Any] = {"persistedQuery": {"version": 1, "sha256Hash": sha}}
    for body in (
        {"extensions": reference},
        {"query": query, "extensions": reference},
        {"extensions": reference},
    ):
        assert (await api.client.post("/graphql", json=body)).status_code == 200
    scraped = await scrape(api)

    for result in ("miss", "registered", "hit"):
        assert scraped.value("storefront_persisted_queries_total", result=result) == 1, result
    assert scraped.value("storefront_persisted_queries_total", result="rejected") == 0
    # The miss had no document to read a name from: the client gave none either.
    assert scraped.value("storefront_graphql_operations_total", operation_name="Count") == 2
    assert scraped.value("storefront_graphql_operations_total", operation_name="anonymous") == 1


async def test_operation_names_are_bounded(api: Api) -> None:
    metrics = api.services.metrics
    assert metrics is not None
    metrics.operation_names.update(f"Seen{i}" for i in range(MAX_OPERATION_NAMES - 1))
    for name in ("Last", "OneTooMany", "Seen7", None):
        label = f"query {name} " if name else "query "
        await api.data(label + "{ categories { name } }")
    scraped = await scrape(api)

    names = scraped.label_values("storefront_graphql_operations_total", "operation_name")
    assert names == {"Last", "other", "Seen7", "anonymous"}
    assert len(metrics.operation_names) == MAX_OPERATION_NAMES


async def test_metrics_off_is_404_and_counts_nothing(db: Database) -> None:
    async with serve(db, METRICS_ENABLED="false") as api:
        await api.data(CATALOG)
        response = await api.client.get("/metrics")
        assert api.services.metrics is None
        assert api.services.batch_observer is None

    assert response.status_code == 404


async def test_pool_states_split_the_open_connections(db: Database) -> None:
    async with serve(db, DB_POOL_SIZE="1", DB_MAX_OVERFLOW="2") as api:
        engine = api.services.engine
        size = engine.sync_engine.pool.size()  # type: ignore[attr-defined]
        async with engine.connect() as first, engine.connect() as second:
            for connection in (first, second):
                await connection.exec_driver_sql("SELECT 1")
            held = await scrape(api)
        released = await scrape(api)

    def states(scraped: Scrape) -> dict[str, float]:
        return {
            state: scraped.value("storefront_db_pool_connections", state=state)
            for state in ("idle", "in_use", "overflow")
        }

    # Two checked out: up to the pool size in use, the rest overflow.
    assert states(held)["in_use"] == min(2, size)
    assert states(held)["overflow"] == 2 - min(2, size)
    assert states(released)["in_use"] == states(released)["overflow"] == 0
    assert states(released)["idle"] >= min(2, size)


class Recording:
    def __init__(self, name: str, seen: list[str]) -> None:
        self.name, self.seen = name, seen

    @contextlib.contextmanager
    def batch(self, loader: str, keys: int) -> Iterator[None]:
        self.seen.append(f"{self.name} enters {loader}:{keys}")
        yield
        self.seen.append(f"{self.name} leaves")


def test_a_fan_out_observer_tells_every_observer_in_order() -> None:
    seen: list[str] = []
    observer = combine(Recording("metrics", seen), None, Recording("tracing", seen))
    assert observer is not None
    with observer.batch("product_by_id", 3):
        seen.append("batch")

    assert seen == [
        "metrics enters product_by_id:3",
        "tracing enters product_by_id:3",
        "batch",
        "tracing leaves",
        "metrics leaves",
    ]
    assert combine(None, None) is None
