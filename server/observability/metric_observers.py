"""Where the metrics are counted: one observation per operation, SQL events, loader batches.

Cheap on the hot path: label children are bound once per label value and
kept (`_Children`), nothing is done per field, and with METRICS_ENABLED=false
none of this is installed.

Example:
    observe_operation(metrics, graphql_request, operation, result, seconds=0.012)
    count_statements_by_loader(engine, metrics)
    Loaders(..., observer=MetricsBatchObserver(metrics))
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from loaders.observer import current_loader
from schema.compiled.compare import shadowing
from server.observability.metrics import Metrics
from server.persisted.queries import PERSISTED_QUERY_NOT_FOUND
from server.pipeline.answers import error_codes

if TYPE_CHECKING:
    from graphql import OperationDefinitionNode

    from server.pipeline.request import GraphQLRequest, Result

C = TypeVar("C")
_NOTHING = contextlib.nullcontext()
_STARTED = "_storefront_metrics_started"


class _Children(Generic[C]):
    """A family's children by one label value, bound on first use."""

    def __init__(self, bind: Callable[[str], C]) -> None:
        self.bind = bind
        self.children: dict[str, C] = {}

    def __getitem__(self, value: str) -> C:
        child = self.children.get(value)
        if child is None:
            child = self.children[value] = self.bind(value)
        return child


class MetricsBatchObserver:
    """Observes each loader batch's key count in `storefront_dataloader_batch_size`."""

    def __init__(self, metrics: Metrics) -> None:
        self.sizes = _Children(lambda loader: metrics.batch_size.labels(loader=loader))

    def batch(self, loader: str, keys: int) -> AbstractContextManager[None]:
        self.sizes[loader].observe(keys)
        return _NOTHING


class EntityCacheCounter:
    """Counts the entity cache's hits and misses (one per id looked up)."""

    def __init__(self, metrics: Metrics) -> None:
        self.hits = metrics.cache_requests.labels(cache="entity", result="hit")
        self.misses = metrics.cache_requests.labels(cache="entity", result="miss")

    def counted(self, *, hits: int, misses: int) -> None:
        if hits:
            self.hits.inc(hits)
        if misses:
            self.misses.inc(misses)


def count_statements_by_loader(engine: AsyncEngine, metrics: Metrics) -> None:
    """Counts and times each statement `engine` sends under the loader that sent it
    (`current_loader()`: a batch's name, `mutation`, or `other`)."""
    counts = _Children(lambda loader: metrics.db_statements.labels(loader=loader))
    durations = _Children(lambda loader: metrics.db_statement_duration.labels(loader=loader))

    # SQLAlchemy runs these in a greenlet sharing the awaiting task's context, so
    # current_loader() is the batch (or mutation) that sent the statement.
    def before(_conn: Any, _cursor: Any, _sql: Any, _params: Any, context: Any, _many: Any) -> None:
        if shadowing.get():
            return  # a compared reference run's statement (GRAPHQL_EXECUTION=compare)
        counts[current_loader()].inc()
        if context is not None:
            setattr(context, _STARTED, time.perf_counter())

    def after(_conn: Any, _cursor: Any, _sql: Any, _params: Any, context: Any, _many: Any) -> None:
        started = getattr(context, _STARTED, None)
        if started is not None:
            durations[current_loader()].observe(time.perf_counter() - started)

    event.listen(engine.sync_engine, "before_cursor_execute", before)
    event.listen(engine.sync_engine, "after_cursor_execute", after)


def pool_reading(engine: AsyncEngine) -> Callable[[], tuple[int, int, int]]:
    """(idle, in_use, overflow) of `engine`'s pool: in_use counts checked-out
    connections up to the pool size, overflow those beyond it."""
    pool: Any = engine.sync_engine.pool

    def read() -> tuple[int, int, int]:
        try:
            size, idle, out = int(pool.size()), int(pool.checkedin()), int(pool.checkedout())
        except AttributeError:  # a pool without a queue (NullPool, StaticPool)
            return 0, 0, 0
        in_use = min(out, size)
        return idle, in_use, out - in_use

    return read


def observe_operation(
    metrics: Metrics,
    graphql_request: GraphQLRequest,
    operation: OperationDefinitionNode | None,
    result: Result,
    *,
    seconds: float,
) -> None:
    """Everything one operation's answer tells the metrics: its outcome and duration,
    its errors by code, its cost, a 429, what the result cache and persisted queries did.

    An operation whose document could not be read counts as a `query` (GraphQL's
    default) under the name the client gave."""
    kind = operation.operation.value if operation is not None else "query"
    name_node = operation.name if operation is not None else None
    name = metrics.operation_name(
        name_node.value if name_node is not None else graphql_request.operation_name
    )
    codes = _error_codes(result)
    ran = result.bill is not None and not result.bill.refused
    if not ran:
        outcome = "rejected"
    elif codes or result.status >= 500:
        outcome = "error"
    else:
        outcome = "ok"
    child = metrics.child
    operations, duration = metrics.operation_series(kind, name, outcome)
    operations.inc()
    duration.observe(seconds)
    for code in codes:
        child(metrics.errors, code).inc()
    if result.status == 429:
        metrics.rate_limited.inc()
    if result.bill is not None and ran:
        requested, actual = metrics.cost_series()
        requested.observe(result.bill.requested)
        actual.observe(result.bill.actual)
    if result.served is not None:
        child(metrics.cache_requests, "response", result.served.state.label).inc()
    elif result.bypassed_cache:
        child(metrics.cache_requests, "response", "bypass").inc()
    persisted = _persisted(graphql_request, codes, ran)
    if persisted is not None:
        metrics.child(metrics.persisted_queries, persisted).inc()


def _error_codes(result: Result) -> list[str]:
    if result.body is None:
        return error_codes(result.payload)
    if result.served is not None and result.served.produced is not None:
        return list(result.served.produced.meta.get("error_codes", ()))
    return []  # a cached or replayed answer: stored only without errors


def _persisted(graphql_request: GraphQLRequest, codes: list[str], ran: bool) -> str | None:
    """hit/miss/registered/rejected for a request naming a persisted document; else None."""
    extensions = graphql_request.extensions
    if graphql_request.document_id is None and not (extensions and "persistedQuery" in extensions):
        return None
    if PERSISTED_QUERY_NOT_FOUND in codes:
        return "miss"
    if any(code.startswith("PERSISTED_QUERY") for code in codes):
        return "rejected"
    if graphql_request.query is not None:
        return "registered" if ran else "rejected"
    return "hit"
