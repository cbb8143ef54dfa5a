"""The composition root: every long-lived service of a server process, built and closed here.

`open_services(settings)` builds them once (the Starlette lifespan enters it)
as one frozen, typed `Services`; request code reaches them through
`services_of(request)`, the one place that reads the app's state. Redis
clients come from server/redis_guard.py and engines from server/database.py,
which the CLI builds its own with too.

Example:
    async with open_services(settings) as services:
        app.state.services = services
        ...  # serve; on exit caches, Redis and the engine are closed, in that order
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, cast

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from loaders import Dialect
from loaders.observer import BatchObserver
from schema import Executor, create_schema
from schema.context import fresh_context
from schema.cost import CostAnalysis
from schema.executor import Execution
from schema.limits import DocumentLimits
from server.auth.viewer_cache import AuthCache
from server.cache.caches import Caches, create_caches
from server.cache.change_feed import ChangeFeed
from server.database import create_engine, create_sessionmaker
from server.observability.batch_observers import combine
from server.observability.metric_observers import (
    EntityCacheCounter,
    MetricsBatchObserver,
    count_statements_by_loader,
    pool_reading,
)
from server.observability.metrics import Metrics, multiprocess_dir
from server.observability.trace_spans import LoaderSpans
from server.observability.tracing import Tracing
from server.persisted.manifest import load_manifest
from server.persisted.protocol import PersistedQueryStore
from server.persisted.queries import PersistedQueries, PersistedQueryMode
from server.persisted.stores import InMemoryPersistedQueryStore, RedisPersistedQueryStore
from server.pipeline.prepared_memo import PreparedMemo
from server.ratelimit.auth_failures import AuthFailureThrottle
from server.ratelimit.buckets import InMemoryRateLimiter, RedisRateLimiter
from server.ratelimit.leases import LeasedRateLimiter
from server.ratelimit.protocol import BucketPolicy
from server.ratelimit.throttle import Throttle
from server.redis_guard import create_redis, operator_redis
from server.settings import Settings
from server.statement_timeout import limit_statements

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import HTTPConnection

# Seconds the startup import of PERSISTED_QUERIES_MANIFEST may take Redis.
IMPORT_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Services:
    """What every request of this process shares; built by `open_services`."""

    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    dialect: Dialect
    executor: Executor
    cost_analysis: CostAnalysis
    caches: Caches | None
    """The result and entity caches; None when CACHE_ENABLED is off (or cannot be on)."""
    persisted_queries: PersistedQueries
    throttle: Throttle
    auth_failures: AuthFailureThrottle
    auth_cache: AuthCache
    change_feed: ChangeFeed
    redis: Redis | None
    """The rate limiter's and persisted queries' client; None without REDIS_URL."""
    metrics: Metrics | None = None
    """The Prometheus families (server/observability/metrics.py); None with METRICS_ENABLED off."""
    tracing: Tracing | None = None
    """OpenTelemetry (server/observability/tracing.py); None when no exporter is set."""
    batch_observer: BatchObserver | None = None
    """Who watches loader batches (metrics, tracing): one fan-out
    (server/observability/batch_observers.py), or None when none watches."""
    prepared: PreparedMemo = field(default_factory=PreparedMemo)
    """What the pipeline checked for repeated request bytes (server/pipeline/prepared_memo.py)."""


@contextlib.asynccontextmanager
async def open_services(
    settings: Settings, *, tracing: Tracing | None = None
) -> AsyncIterator[Services]:
    """Every service `settings` ask for, closed (caches, Redis, engine) on exit; the
    engine and Redis clients traced by `tracing` when given."""
    engine = server_engine(settings)
    caches: Caches | None = None
    redis: Redis | None = None
    try:
        schema = create_schema()._schema
        executor = Executor(
            schema,
            limits=DocumentLimits(
                max_depth=settings.max_query_depth,
                max_aliases=settings.max_query_aliases,
                max_directives=settings.max_query_directives,
                max_tokens=settings.max_query_tokens,
            ),
            introspection=settings.introspection,
            timeout=settings.execution_timeout_ms / 1000 or None,
            execution=cast("Execution", settings.graphql_execution),
            fresh_context=fresh_context,
        )
        change_feed = ChangeFeed()
        metrics = _metrics(settings, engine)
        caches = create_caches(
            settings,
            schema,
            entity_counter=None if metrics is None else EntityCacheCounter(metrics),
        )
        if caches is not None:
            caches.start()
            # Every committed write drops what it changed, before its answer is sent.
            change_feed.subscribe(caches.responses.invalidate)
        redis = create_redis(settings)
        throttle = _throttle(settings, redis)
        if tracing is not None:
            cache_redis = None if caches is None else caches.redis
            tracing.instrument(engine=engine, redis=(redis, cache_redis))
        services = Services(
            settings=settings,
            engine=engine,
            sessionmaker=create_sessionmaker(engine),
            dialect=_dialect(engine),
            executor=executor,
            cost_analysis=CostAnalysis(schema, max_cost=settings.max_query_cost),
            caches=caches,
            persisted_queries=await _persisted_queries(settings, executor, redis),
            throttle=throttle,
            auth_failures=AuthFailureThrottle(
                limiter=throttle.limiter,
                fallback=throttle.fallback,
                policy=BucketPolicy(
                    settings.auth_failure_limit, settings.auth_failure_restore_rate
                ),
            ),
            auth_cache=AuthCache(
                ttl_seconds=settings.auth_cache_seconds,
                stale_seconds=settings.auth_stale_seconds,
            ),
            change_feed=change_feed,
            redis=redis,
            metrics=metrics,
            tracing=tracing,
            batch_observer=combine(
                None if metrics is None else MetricsBatchObserver(metrics),
                None if tracing is None else LoaderSpans(tracing.tracer),
            ),
        )
        yield services
    finally:
        if caches is not None:
            await caches.close()
        if redis is not None:
            await redis.aclose()
        await engine.dispose()


def _metrics(settings: Settings, engine: AsyncEngine) -> Metrics | None:
    """The metric families, counting `engine`'s statements and reading its pool; None
    when METRICS_ENABLED is off (then nothing is counted at all)."""
    if not settings.metrics_enabled:
        return None
    metrics = Metrics.create(multiprocess_dir=multiprocess_dir())
    count_statements_by_loader(engine, metrics)
    metrics.pool.reading = pool_reading(engine)
    return metrics


def services_of(holder: HTTPConnection | Starlette) -> Services:
    """The services of the app serving `holder` (a request, a WebSocket or the app)."""
    app = getattr(holder, "app", holder)  # a connection's app, or the app itself
    services: Services = app.state.services
    return services


def server_engine(settings: Settings) -> AsyncEngine:
    """The server's engine: PostgreSQL statements bounded by DB_STATEMENT_TIMEOUT_MS."""
    engine = create_engine(settings)
    if settings.db_statement_timeout_ms > 0 and not settings.is_sqlite:
        limit_statements(
            engine,
            settings.db_statement_timeout_ms,
            per_transaction=settings.db_pooler == "pgbouncer",
        )
    return engine


def _dialect(engine: AsyncEngine) -> Dialect:
    """The loaders' name of the engine's backend (their one dialect switch)."""
    name = engine.dialect.name
    if name == "postgresql":
        return "postgresql"
    if name == "sqlite":
        return "sqlite"
    raise ValueError(f"unsupported database backend: {name}")


def _throttle(settings: Settings, redis: Redis | None) -> Throttle:
    limiter: LeasedRateLimiter | InMemoryRateLimiter | None = None
    if settings.rate_limit_enabled and redis is not None:
        limiter = LeasedRateLimiter(
            RedisRateLimiter(redis, timeout=settings.redis_timeout_ms / 1000),
            share=settings.rate_limit_lease_share,
            seconds=settings.rate_limit_lease_seconds,
        )
    elif settings.rate_limit_enabled:
        limiter = InMemoryRateLimiter()
    return Throttle(
        limiter=limiter,
        policy=BucketPolicy(settings.rate_limit_maximum, settings.rate_limit_restore_rate),
        admin_policy=BucketPolicy(
            settings.admin_rate_limit_maximum, settings.admin_rate_limit_restore_rate
        ),
    )


async def _persisted_queries(
    settings: Settings, executor: Executor, redis: Redis | None
) -> PersistedQueries:
    """Persisted queries over Redis (shared) or in process; the startup manifest imported."""
    store: PersistedQueryStore
    ttl, window = settings.apq_ttl_seconds, settings.apq_registration_window_seconds
    per_client = settings.apq_registrations_per_client
    if redis is not None:
        store = RedisPersistedQueryStore(
            redis,
            apq_ttl_seconds=ttl,
            registrations_per_client=per_client,
            registration_window_seconds=window,
            timeout=settings.redis_timeout_ms / 1000,
        )
    else:
        store = InMemoryPersistedQueryStore(
            max_entries=settings.apq_memory_entries,
            max_bytes=settings.apq_memory_bytes,
            apq_ttl_seconds=ttl,
            registrations_per_client=per_client,
            registration_window_seconds=window,
        )
    if settings.persisted_queries_manifest:
        manifest = Path(settings.persisted_queries_manifest)
        documents = load_manifest(
            manifest, schema=executor.schema, max_cost=settings.max_query_cost
        )
        importer_client = operator_redis(settings)
        if importer_client is not None:
            # A large manifest may take Redis longer than a request's bound: its own client.
            importer = RedisPersistedQueryStore(
                importer_client, apq_ttl_seconds=ttl, timeout=IMPORT_TIMEOUT, owns_client=True
            )
            try:
                await importer.put_trusted(documents)
            finally:
                await importer.close()
        else:
            await store.put_trusted(documents)
    return PersistedQueries(
        executor=executor,
        store=store,
        mode=PersistedQueryMode(settings.persisted_queries),
        allow_admin=settings.trusted_documents_allow_admin,
        cache_size=settings.persisted_document_cache_size,
        max_document_bytes=settings.apq_max_document_bytes,
    )
