"""Tracing through the real HTTP endpoint: the span tree of a dashboard request, trace
continuation from `traceparent`, trace ids on log lines, and nothing at all when off."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from starlette.applications import Starlette

from server.app import create_app
from server.observability.log_context import RequestContext
from server.observability.trace_spans import LoaderSpans
from server.observability.tracing import Tracing
from server.services import Services, services_of
from server.settings import Settings
from tests.conftest import Database
from tests.factories import Factory

DASHBOARD = """query OrderDashboard($n: Int!) { orders(first: $n) { edges { node {
  customer { name }
  items { quantity product { name category { name } } }
} } } }"""

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


class Traced:
    """A running app whose spans end up in `exporter`."""

    def __init__(self, client: httpx.AsyncClient, app: Starlette, exporter: Any) -> None:
        self.client = client
        self.app = app
        self.exporter = exporter

    @property
    def services(self) -> Services:
        return services_of(self.app)

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())


@contextlib.asynccontextmanager
async def traced_app(db: Database, *, tracing: bool = True, **env: str) -> AsyncIterator[Traced]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    settings = Settings.from_env({"DATABASE_URL": db.url, "CACHE_ENABLED": "false", **env})
    app = create_app(settings, tracing=Tracing(provider) if tracing else None)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield Traced(client, app, exporter)


async def _shop(factory: Factory) -> None:
    category = await factory.category()
    products = [await factory.product(category_id=category) for _ in range(3)]
    customers = [await factory.user() for _ in range(2)]
    for i in range(3):
        await factory.order(user_id=customers[i % 2], items=[(products[i], 1, 100)])


async def _dashboard(app: Traced, token: str, headers: dict[str, str] | None = None) -> Any:
    response = await app.client.post(
        "/graphql",
        json={"query": DASHBOARD, "variables": {"n": 3}},
        headers={"Authorization": f"Bearer {token}", **(headers or {})},
    )
    assert response.status_code == 200, response.text
    assert "errors" not in response.json()
    return response


async def _admin_token(db: Database) -> str:
    from resolvers.tokens import create_token

    issued = await create_token(sessionmaker=db.sessionmaker, email="a@example.com", role="admin")
    return issued.token


def _children(spans: list[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    return [s for s in spans if s.parent is not None and s.parent.span_id == _id(parent)]


def _id(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.span_id


def _trace(span: ReadableSpan) -> str:
    assert span.context is not None
    return format(span.context.trace_id, "032x")


def _one(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, [s.name for s in spans]
    return found[0]


async def test_a_dashboard_request_is_a_tree_request_operation_batches_sql(
    db: Database, factory: Factory
) -> None:
    await _shop(factory)
    token = await _admin_token(db)
    async with traced_app(db) as app:
        await _dashboard(app, token)
        spans = app.spans()

    request = next(s for s in spans if s.kind is SpanKind.SERVER)
    assert request.parent is None
    assert request.name == "POST /graphql"
    assert {_trace(s) for s in spans} == {_trace(request)}

    operation = _one(spans, "query OrderDashboard")
    assert operation.parent is not None
    assert operation.parent.span_id == _id(request)
    attributes = dict(operation.attributes or {})
    assert attributes["graphql.operation.type"] == "query"
    assert attributes["graphql.operation.name"] == "OrderDashboard"
    assert attributes["graphql.document"] == DASHBOARD
    assert len(str(attributes["storefront.document.hash"])) == 64
    requested = attributes["storefront.cost.requested"]
    assert isinstance(requested, int)
    assert requested > 0
    actual = attributes["storefront.cost.actual"]
    assert isinstance(actual, int)
    assert 0 < actual <= requested
    assert "storefront.cache.result" not in attributes  # CACHE_ENABLED=false: no cache

    batches = {s.name: s for s in _children(spans, operation) if s.name.startswith("loader ")}
    assert set(batches) == {
        "loader user_by_id",
        "loader items_by_order_id",
        "loader product_by_id",
        "loader category_by_id",
    }
    keys = {name: dict(s.attributes or {}) for name, s in batches.items()}
    assert keys["loader user_by_id"] == {
        "storefront.loader.name": "user_by_id",
        "storefront.loader.keys": 2,  # two customers for three orders
    }
    assert keys["loader items_by_order_id"]["storefront.loader.keys"] == 3
    assert keys["loader category_by_id"]["storefront.loader.keys"] == 1
    for batch in batches.values():
        statements = _children(spans, batch)
        assert len(statements) == 1, (batch.name, [s.name for s in statements])
        assert statements[0].kind is SpanKind.CLIENT
        sql = dict(statements[0].attributes or {})
        assert str(sql.get("db.statement", sql.get("db.query.text"))).startswith("SELECT")
    # The root listing is read outside any loader: its statement hangs off the operation.
    outside = [s for s in _children(spans, operation) if s.kind is SpanKind.CLIENT]
    assert outside, [s.name for s in _children(spans, operation)]


async def test_a_traceparent_continues_its_trace(db: Database, factory: Factory) -> None:
    await _shop(factory)
    token = await _admin_token(db)
    async with traced_app(db) as app:
        await _dashboard(app, token, {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"})
        spans = app.spans()
    request = next(s for s in spans if s.kind is SpanKind.SERVER)
    assert _trace(request) == TRACE_ID
    assert request.parent is not None
    assert request.parent.is_remote
    assert format(request.parent.span_id, "016x") == PARENT_ID
    assert {_trace(s) for s in spans} == {TRACE_ID}


@pytest.mark.parametrize(
    "traceparent",
    [
        "garbage",
        f"00-{TRACE_ID}-{PARENT_ID}",  # no flags
        f"00-{'0' * 32}-{PARENT_ID}-01",  # all-zero trace id
        f"ff-{TRACE_ID}-{PARENT_ID}-01",  # forbidden version
    ],
)
async def test_a_malformed_traceparent_starts_a_new_trace(
    db: Database, factory: Factory, traceparent: str
) -> None:
    await _shop(factory)
    token = await _admin_token(db)
    async with traced_app(db) as app:
        await _dashboard(app, token, {"traceparent": traceparent})
        spans = app.spans()
    request = next(s for s in spans if s.kind is SpanKind.SERVER)
    assert request.parent is None
    assert _trace(request) not in {TRACE_ID, "0" * 32}
    assert _one(spans, "query OrderDashboard")


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def _captured(logger: str) -> Iterator[_Lines]:
    handler = _Lines()
    handler.addFilter(RequestContext())  # as configure_from gives every handler
    target = logging.getLogger(logger)
    level = target.level
    target.addHandler(handler)
    target.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        target.removeHandler(handler)
        target.setLevel(level)


@pytest.mark.parametrize("traceparent", [f"00-{TRACE_ID}-{PARENT_ID}-01", "not-a-traceparent"])
async def test_log_lines_of_a_traced_request_carry_its_trace_id(
    db: Database, factory: Factory, traceparent: str
) -> None:
    await _shop(factory)
    token = await _admin_token(db)
    async with traced_app(db) as app:
        with _captured("storefront.requests") as lines:
            await _dashboard(app, token, {"traceparent": traceparent})
        spans = app.spans()
    request = next(s for s in spans if s.kind is SpanKind.SERVER)
    (line,) = [r for r in lines.records if r.getMessage() == "request"]
    assert line.trace_id == _trace(request)  # type: ignore[attr-defined]
    if traceparent.startswith("00-"):
        assert line.trace_id == TRACE_ID  # type: ignore[attr-defined]


async def test_redis_calls_are_spans_of_the_operation(
    db: Database, factory: Factory, redis_url: str
) -> None:
    await _shop(factory)
    token = await _admin_token(db)
    async with traced_app(db, REDIS_URL=redis_url) as app:
        await _dashboard(app, token)
        spans = app.spans()
    operation = _one(spans, "query OrderDashboard")
    calls = [s for s in spans if dict(s.attributes or {}).get("db.system") == "redis"]
    assert calls, [s.name for s in spans]
    assert all(s.parent is not None for s in calls)
    # The rate limiter charges the operation: its Redis calls run inside it.
    assert any(s.parent is not None and s.parent.span_id == _id(operation) for s in calls)


async def test_tracing_off_installs_nothing(db: Database, factory: Factory, redis_url: str) -> None:
    await _shop(factory)
    token = await _admin_token(db)
    async with traced_app(db, tracing=False, REDIS_URL=redis_url) as app:
        with _captured("storefront.requests") as lines:
            await _dashboard(app, token, {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"})
        services = app.services
        assert services.tracing is None
        observers = getattr(services.batch_observer, "observers", (services.batch_observer,))
        assert not [o for o in observers if isinstance(o, LoaderSpans)]  # metrics' may remain
        assert not [m for m in app.app.user_middleware if "opentelemetry" in repr(m.cls)]
        engine = services.engine.sync_engine
        assert not [t for t, *_ in EngineTracer._remove_event_listener_params if t() is engine]
        assert services.redis is not None
        assert not getattr(services.redis, "_is_instrumented_by_opentelemetry", False)
    # No span runs, so the log line's trace id is the header's, as it was before tracing.
    (line,) = [r for r in lines.records if r.getMessage() == "request"]
    assert line.trace_id == TRACE_ID  # type: ignore[attr-defined]


async def test_tracing_on_instruments_the_services_clients(db: Database, redis_url: str) -> None:
    """The control of the test above: the same checks do see what tracing installs."""
    async with traced_app(db, REDIS_URL=redis_url) as app:
        services = app.services
        assert services.tracing is not None
        observers = getattr(services.batch_observer, "observers", (services.batch_observer,))
        assert [o for o in observers if isinstance(o, LoaderSpans)]
        assert [m for m in app.app.user_middleware if "opentelemetry" in repr(m.cls)]
        engine = services.engine.sync_engine
        assert [t for t, *_ in EngineTracer._remove_event_listener_params if t() is engine]
        assert getattr(services.redis, "_is_instrumented_by_opentelemetry", False)


async def test_excluded_urls_make_no_trace(
    db: Database, factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_PYTHON_EXCLUDED_URLS", "health")
    await _shop(factory)
    token = await _admin_token(db)
    async with traced_app(db) as app:
        assert (await app.client.get("/health")).status_code == 200
        assert [s.name for s in app.spans()] == []
        await _dashboard(app, token)
        assert [s.name for s in app.spans() if s.kind is SpanKind.SERVER] == ["POST /graphql"]
