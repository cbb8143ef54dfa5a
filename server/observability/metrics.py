"""The Prometheus metrics of the operations contract, and their `GET /metrics` page.

Every family of the contract's table is declared here once, with its labels,
on a registry of this process's own (`Metrics.create()`; several apps in one
process, as in tests, never collide). Under `storefront serve --workers N`
prometheus-client's multiprocess mode is on (`PROMETHEUS_MULTIPROC_DIR`, set by
`serve`: server/observability/multiprocess.py): every worker writes its values
to files there, and whichever worker answers `/metrics` reads them all.

Where each is counted: server/observability/metric_observers.py (the pipeline's
one observation point, SQL statements, loader batches), server/http/metrics_endpoint.py
(HTTP requests, the page itself), the entity cache (server/cache/entity_cache.py).

Example:
    metrics = Metrics.create()
    metrics.http_requests.labels(method="POST", status="200").inc()
    body = exposition(metrics)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

# The content type the contract names (Prometheus' text format 0.0.4).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MULTIPROC_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"

# Beyond this many distinct operation names per process, a new name is `other`.
MAX_OPERATION_NAMES = 500
ANONYMOUS = "anonymous"
OTHER = "other"

SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
STATEMENT_SECONDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5)
KEYS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
COST = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)

PoolReading = Callable[[], tuple[int, int, int]]
"""(idle, in_use, overflow) of a connection pool, read at scrape time."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Metrics:
    """One process's metric families (names, types and labels as the contract says)."""

    registry: CollectorRegistry
    multiprocess_dir: str | None
    http_requests: Counter
    operations: Counter
    operation_duration: Histogram
    errors: Counter
    db_statements: Counter
    db_statement_duration: Histogram
    batch_size: Histogram
    cache_requests: Counter
    persisted_queries: Counter
    query_cost: Histogram
    rate_limited: Counter
    hit_path_answers: Counter
    subscriptions_active: Gauge
    events_published: Counter
    webhook_deliveries: Counter
    operation_names: set[str] = field(default_factory=set)
    """The distinct operation names seen (at most MAX_OPERATION_NAMES)."""
    pool: PoolCollector = field(default_factory=lambda: PoolCollector())
    _children: dict[tuple[int, tuple[str, ...]], Any] = field(default_factory=dict)
    _operation_series: dict[tuple[str, str, str], tuple[Any, Any]] = field(default_factory=dict)

    def child(self, family: MetricWrapperBase, *values: str) -> Any:
        """`family.labels(*values)`, found in one dictionary lookup: prometheus-client's
        own `labels` costs a few µs per call, several times per request. Bounded as the
        label values are (operation names by `operation_name`, codes, statuses)."""
        key = (id(family), values)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = family.labels(*values)
        return found

    def operation_series(self, kind: str, name: str, outcome: str) -> tuple[Any, Any]:
        """The `operations` and `operation_duration` children of one operation, found
        in one lookup: every answer counts in both."""
        key = (kind, name, outcome)
        found = self._operation_series.get(key)
        if found is None:
            found = self._operation_series[key] = (
                self.child(self.operations, kind, name, outcome),
                self.child(self.operation_duration, kind, name),
            )
        return found

    def cost_series(self) -> tuple[Any, Any]:
        """The `query_cost` children of the requested and the actual cost."""
        return self.child(self.query_cost, "requested"), self.child(self.query_cost, "actual")

    @classmethod
    def create(cls, *, multiprocess_dir: str | None = None) -> Metrics:
        """Every family, registered on a new registry (read for the page when not in
        multiprocess mode; in it, the files of `multiprocess_dir` are)."""
        # No `_created` series: not in the contract, and multiprocess mode has none.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        registry = CollectorRegistry(auto_describe=True)
        operation = ("operation_type", "operation_name")
        metrics = cls(
            registry=registry,
            multiprocess_dir=multiprocess_dir,
            http_requests=Counter(
                "storefront_http_requests_total",
                "HTTP requests answered on /graphql",
                ("method", "status"),
                registry=registry,
            ),
            operations=Counter(
                "storefront_graphql_operations_total",
                "GraphQL operations run or refused",
                (*operation, "outcome"),
                registry=registry,
            ),
            operation_duration=Histogram(
                "storefront_graphql_operation_duration_seconds",
                "Whole operation, parse to answer",
                operation,
                buckets=SECONDS,
                registry=registry,
            ),
            errors=Counter(
                "storefront_graphql_errors_total",
                "Errors by extensions.code",
                ("code",),
                registry=registry,
            ),
            db_statements=Counter(
                "storefront_db_statements_total",
                "SQL statements sent, by loader",
                ("loader",),
                registry=registry,
            ),
            db_statement_duration=Histogram(
                "storefront_db_statement_duration_seconds",
                "Time per SQL statement, by loader",
                ("loader",),
                buckets=STATEMENT_SECONDS,
                registry=registry,
            ),
            batch_size=Histogram(
                "storefront_dataloader_batch_size",
                "Keys per loader batch",
                ("loader",),
                buckets=KEYS,
                registry=registry,
            ),
            cache_requests=Counter(
                "storefront_cache_requests_total",
                "Result-cache lookups",
                ("cache", "result"),
                registry=registry,
            ),
            persisted_queries=Counter(
                "storefront_persisted_queries_total",
                "Persisted-query lookups",
                ("result",),
                registry=registry,
            ),
            query_cost=Histogram(
                "storefront_query_cost",
                "Cost per operation",
                ("kind",),
                buckets=COST,
                registry=registry,
            ),
            rate_limited=Counter(
                "storefront_rate_limited_total",
                "Requests refused with 429",
                registry=registry,
            ),
            hit_path_answers=Counter(
                "storefront_hit_path_answers_total",
                "Answers on /graphql given by the hit path (in http_requests_total too)",
                registry=registry,
            ),
            subscriptions_active=Gauge(
                "storefront_subscriptions_active",
                "Open subscriptions",
                ("transport",),
                multiprocess_mode="livesum",
                registry=registry,
            ),
            events_published=Counter(
                "storefront_events_published_total",
                "Events relayed from the outbox",
                ("event",),
                registry=registry,
            ),
            webhook_deliveries=Counter(
                "storefront_webhook_deliveries_total",
                "Webhook attempts",
                ("event", "result"),
                registry=registry,
            ),
        )
        registry.register(metrics.pool)
        # Families without a feature yet still show, at 0, with their label values.
        for transport in ("ws", "sse"):
            metrics.subscriptions_active.labels(transport=transport)
        return metrics

    def operation_name(self, name: str | None) -> str:
        """The label for a client's operation name: bounded to MAX_OPERATION_NAMES per
        process (later names are `other`), `anonymous` for none."""
        if not name:
            return ANONYMOUS
        names = self.operation_names
        if name in names:
            return name
        if len(names) >= MAX_OPERATION_NAMES:
            return OTHER
        names.add(name)
        return name


class PoolCollector(Collector):
    """`storefront_db_pool_connections`, read from the pool when scraped.

    The states split the open connections: `idle` are in the pool, `in_use`
    checked out up to the pool size, `overflow` checked out beyond it (so
    in_use excludes overflow, as deploy/prometheus/alerts.yml reads them).
    """

    def __init__(self) -> None:
        self.reading: PoolReading | None = None

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "storefront_db_pool_connections", "Connection pool", labels=("state",)
        )
        idle, in_use, overflow = self.reading() if self.reading is not None else (0, 0, 0)
        family.add_metric(("idle",), idle)
        family.add_metric(("in_use",), in_use)
        family.add_metric(("overflow",), overflow)
        yield family


def exposition(metrics: Metrics) -> bytes:
    """The page: this process's figures, or every worker's in multiprocess mode (the
    pool gauge is the answering worker's: a pool is not shared between processes)."""
    if metrics.multiprocess_dir is None:
        return generate_latest(metrics.registry)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=metrics.multiprocess_dir)  # type: ignore[no-untyped-call]
    registry.register(metrics.pool)
    return generate_latest(registry)


def multiprocess_dir() -> str | None:
    """The directory of multiprocess mode, when `serve` (or the operator) set one."""
    return os.environ.get(MULTIPROC_DIR_VARIABLE) or None
