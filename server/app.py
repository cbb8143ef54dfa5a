"""The application factory: routes, middleware and lifespan in one constructor call."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from graphql import print_schema
from redis.asyncio import Redis
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse
from starlette.routing import Mount, Route

from schema import Executor, create_schema
from schema.cost import CostAnalysis
from schema.limits import DocumentLimits
from server.auth.viewer_cache import AuthCache
from server.cache.caches import create_caches
from server.cache.change_feed import ChangeFeed
from server.database import create_engine, create_sessionmaker
from server.http.body_limit import BodyLimitMiddleware
from server.http.compression import compression
from server.http.error_boundary import ErrorBoundaryMiddleware
from server.http.graphiql import graphiql_static_app
from server.http.health import health
from server.http.request_id import RequestIdMiddleware
from server.http.view import DRY_RUN_HEADER, graphql_endpoint
from server.observability.log_config import configure_from
from server.observability.request_log import RequestLogMiddleware
from server.persisted.manifest import load_manifest
from server.persisted.protocol import PersistedQueryStore
from server.persisted.queries import PersistedQueries, PersistedQueryMode
from server.persisted.stores import InMemoryPersistedQueryStore, RedisPersistedQueryStore
from server.ratelimit.auth_failures import AuthFailureThrottle
from server.ratelimit.buckets import InMemoryRateLimiter, RedisRateLimiter
from server.ratelimit.protocol import BucketPolicy
from server.ratelimit.throttle import Throttle
from server.redis_guard import bounded_client
from server.settings import Settings

# Seconds the startup import of PERSISTED_QUERIES_MANIFEST may take Redis.
IMPORT_TIMEOUT = 30.0


def create_app(settings: Settings | None = None) -> Starlette:
    """A Starlette app for `settings` (default: from the environment).

    Long-lived resources (engine, compiled schema) are built in the lifespan,
    never at import time, and closed on shutdown.
    """
    settings = settings or Settings.from_env()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        engine = create_engine(settings)
        app.state.settings = settings
        app.state.engine = engine
        app.state.dialect = engine.dialect.name
        app.state.sessionmaker = create_sessionmaker(engine)
        if settings.db_statement_timeout_ms > 0 and not settings.is_sqlite:
            _limit_statements(engine, settings.db_statement_timeout_ms)
        schema = create_schema()._schema
        app.state.executor = Executor(
            schema,
            limits=DocumentLimits(
                max_depth=settings.max_query_depth,
                max_aliases=settings.max_query_aliases,
                max_directives=settings.max_query_directives,
                max_tokens=settings.max_query_tokens,
            ),
            introspection=settings.introspection,
            timeout=settings.execution_timeout_ms / 1000 or None,
        )
        app.state.cost_analysis = CostAnalysis(schema, max_cost=settings.max_query_cost)
        app.state.change_feed = ChangeFeed()
        caches = create_caches(settings, schema)
        app.state.caches = caches
        if caches is not None:
            # Every committed write drops what it changed, before its answer is sent.
            app.state.change_feed.subscribe(caches.responses.invalidate)
        app.state.auth_cache = AuthCache(
            ttl_seconds=settings.auth_cache_seconds, stale_seconds=settings.auth_stale_seconds
        )
        redis = _redis(settings)
        app.state.redis = redis
        app.state.throttle = _throttle(settings, redis)
        app.state.auth_failures = AuthFailureThrottle(
            limiter=app.state.throttle.limiter,
            fallback=app.state.throttle.fallback,
            policy=BucketPolicy(settings.auth_failure_limit, settings.auth_failure_restore_rate),
        )
        try:
            app.state.persisted_queries = await _persisted_queries(
                settings, app.state.executor, redis
            )
            yield
        finally:
            if caches is not None:
                await caches.close()
            if redis is not None:
                await redis.aclose()
            await engine.dispose()

    return Starlette(
        routes=[
            Route("/", _to_graphql, methods=["GET"]),
            Route("/graphql", graphql_endpoint, methods=["GET", "POST"]),
            # The SDL is introspection in another form: off with INTROSPECTION.
            *([Route("/graphql/schema.graphql", _schema_sdl)] if settings.introspection else []),
            *([Mount("/graphiql/static", app=graphiql_static_app())] if settings.graphiql else []),
            Route("/health", health, methods=["GET"]),
        ],
        middleware=[
            Middleware(RequestIdMiddleware),
            Middleware(
                RequestLogMiddleware,
                slow_operation_ms=settings.slow_operation_ms,
                proxies=settings.trusted_proxies,
            ),
            *_cors(settings),
            Middleware(ErrorBoundaryMiddleware),
            *compression(settings),
            Middleware(BodyLimitMiddleware, max_bytes=settings.max_request_bytes),
        ],
        lifespan=lifespan,
    )


async def _to_graphql(request: Request) -> RedirectResponse:
    """`/` is where a new user looks first: send them to GraphiQL (query string kept)."""
    query = f"?{request.url.query}" if request.url.query else ""
    return RedirectResponse(f"{request.scope.get('root_path', '')}/graphql{query}")


async def _schema_sdl(request: Request) -> PlainTextResponse:
    """The served schema as SDL, as `storefront schema print` prints it (schema.graphql)."""
    executor: Executor = request.app.state.executor
    return PlainTextResponse(print_schema(executor.schema) + "\n")


def _redis(settings: Settings) -> Redis | None:
    """The client of the rate limiter and the persisted-query store: every socket wait
    bounded by REDIS_TIMEOUT_MS, so a Redis that hangs cannot hang requests with it."""
    if not settings.redis_url:
        return None
    return bounded_client(settings.redis_url, timeout=settings.redis_timeout_ms / 1000)


def _throttle(settings: Settings, redis: Redis | None) -> Throttle:
    limiter: RedisRateLimiter | InMemoryRateLimiter | None = None
    if settings.rate_limit_enabled and redis is not None:
        limiter = RedisRateLimiter(redis, timeout=settings.redis_timeout_ms / 1000)
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
        if redis is not None:
            # A large manifest may take Redis longer than a request's bound: its own client.
            importer = RedisPersistedQueryStore(
                Redis.from_url(str(settings.redis_url)),
                apq_ttl_seconds=ttl,
                timeout=IMPORT_TIMEOUT,
                owns_client=True,
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


def _cors(settings: Settings) -> list[Middleware]:
    """CORS for the configured origins only; with none, no cross-site browser access."""
    if not settings.cors_allowed_origins:
        return []
    return [
        Middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_allowed_origins),
            allow_methods=["GET", "POST"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "Accept",
                "apollographql-client-name",
                "apollographql-client-version",
                "X-Request-ID",
                DRY_RUN_HEADER,
                "Cache-Control",
                "If-None-Match",
                "Idempotency-Key",
            ],
            expose_headers=[
                "X-Request-ID",
                "Retry-After",
                "RateLimit-Limit",
                "RateLimit-Remaining",
                "RateLimit-Reset",
                "ETag",
                "Age",
                "X-Cache",
                "Idempotent-Replayed",
            ],
            max_age=600,
        )
    ]


def _limit_statements(engine: AsyncEngine, timeout_ms: int) -> None:
    """PostgreSQL cancels any statement of this engine running over `timeout_ms`."""

    # Set when each connection opens (asyncpg's server_settings), so it holds for
    # the whole session and a pool reset cannot roll it back. Only the server's
    # engine gets it: migrations and seeding run long statements on purpose.
    def connect_args(_dialect: Any, _record: Any, _cargs: Any, cparams: dict[str, Any]) -> None:
        server_settings = cparams.setdefault("server_settings", {})
        server_settings["statement_timeout"] = str(timeout_ms)

    event.listen(engine.sync_engine, "do_connect", connect_args)


def create_app_from_env() -> Starlette:
    """Entry point for `uvicorn --factory` (and `storefront serve`)."""
    settings = Settings.from_env()
    configure_from(settings)
    return create_app(settings)
