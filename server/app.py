"""The application factory: routes, middleware and lifespan in one constructor call."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from graphql import print_schema
from opentelemetry import trace
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse
from starlette.routing import Mount, Route

from server.http.body_limit import BodyLimitMiddleware
from server.http.compression import compression
from server.http.direct_route import DirectRoute
from server.http.error_boundary import ErrorBoundaryMiddleware
from server.http.graphiql import graphiql_static_app
from server.http.hit_path import HitPathMiddleware
from server.http.metrics_endpoint import HttpMetricsMiddleware, metrics_page
from server.http.probes import ProbesMiddleware
from server.http.request_id import RequestIdMiddleware
from server.http.view import DRY_RUN_HEADER, graphql_endpoint
from server.lifecycle.gc_tuning import gc_tuned
from server.lifecycle.readiness import Readiness
from server.lifecycle.shutdown import Shutdown
from server.observability.log_config import configure_from
from server.observability.multiprocess import forget_process
from server.observability.request_log import RequestLogMiddleware
from server.observability.tracing import Tracing, tracing_from_env
from server.replicas.read_after import READ_AFTER_HEADER
from server.services import open_services, services_of
from server.settings import Settings

_GRAPHQL_METHODS = ("GET", "POST")


def create_app(
    settings: Settings | None = None,
    *,
    tracing: Tracing | None = None,
    handle_signals: bool = False,
) -> Starlette:
    """A Starlette app for `settings` (default: from the environment).

    Long-lived resources (engine, compiled schema, Redis...) are built in the
    lifespan as one `Services` (server/services.py), never at import time, and
    closed on shutdown. `tracing` (server/observability/tracing.py) adds the request
    span middleware and traces the services; it is flushed on shutdown. With
    `handle_signals` (the served app), SIGTERM begins a graceful shutdown while the
    app is served (server/lifecycle/shutdown.py).
    """
    settings = settings or Settings.from_env()
    shutdown = Shutdown()
    readiness = Readiness(timeout=settings.readiness_timeout_ms / 1000)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            async with open_services(settings, tracing=tracing) as services:
                app.state.services = services  # read through services_of(request), nowhere else
                try:
                    with (
                        (
                            shutdown.handling_signals(grace=settings.shutdown_grace_seconds)
                            if handle_signals
                            else contextlib.nullcontext()
                        ),
                        gc_tuned(settings),
                    ):
                        yield
                finally:
                    forget_process()
        finally:
            if tracing is not None:
                await tracing.shutdown()

    return Starlette(
        routes=[
            Route("/", _to_graphql, methods=["GET"]),
            Route("/graphql", graphql_endpoint, methods=list(_GRAPHQL_METHODS)),
            # The SDL is introspection in another form: off with INTROSPECTION.
            *([Route("/graphql/schema.graphql", _schema_sdl)] if settings.introspection else []),
            *([Mount("/graphiql/static", app=graphiql_static_app())] if settings.graphiql else []),
            Route("/metrics", metrics_page, methods=["GET"]),
        ],
        middleware=[
            # First: probes are answered before anything traces, logs, counts or limits them.
            Middleware(ProbesMiddleware, readiness=readiness, shutdown=shutdown),
            # Then a repeated query answered from memory, past the whole stack (with
            # the same answer); not with tracing, which wants a span per request, nor
            # without a result cache, where it would only read and hand on.
            *(
                [Middleware(HitPathMiddleware, settings=settings)]
                if settings.hit_path_enabled and settings.cache_enabled and tracing is None
                else []
            ),
            # Then tracing: every line the request logs runs inside its span.
            *([] if tracing is None else tracing.middleware()),
            Middleware(RequestIdMiddleware),
            Middleware(
                RequestLogMiddleware,
                slow_operation_ms=settings.slow_operation_ms,
                proxies=settings.trusted_proxies,
            ),
            *_cors(settings),
            Middleware(HttpMetricsMiddleware, path="/graphql"),
            Middleware(ErrorBoundaryMiddleware),
            *compression(settings),
            Middleware(BodyLimitMiddleware, max_bytes=settings.max_request_bytes),
            # Last: /graphql skips the router (the route below stays for everything else).
            Middleware(
                DirectRoute, path="/graphql", endpoint=graphql_endpoint, methods=_GRAPHQL_METHODS
            ),
        ],
        lifespan=lifespan,
    )


async def _to_graphql(request: Request) -> RedirectResponse:
    """`/` is where a new user looks first: send them to GraphiQL (query string kept)."""
    query = f"?{request.url.query}" if request.url.query else ""
    return RedirectResponse(f"{request.scope.get('root_path', '')}/graphql{query}")


async def _schema_sdl(request: Request) -> PlainTextResponse:
    """The served schema as SDL, as `storefront schema print` prints it (schema.graphql)."""
    return PlainTextResponse(print_schema(services_of(request).executor.schema) + "\n")


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
                READ_AFTER_HEADER,
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
                READ_AFTER_HEADER,
            ],
            max_age=600,
        )
    ]


def create_app_from_env() -> Starlette:
    """Entry point for `uvicorn --factory` (and `storefront serve`)."""
    settings = Settings.from_env()
    configure_from(settings)
    tracing = tracing_from_env()  # once per process: each worker calls this factory
    if tracing is not None:
        trace.set_tracer_provider(tracing.provider)  # for any library tracing on its own
    return create_app(settings, tracing=tracing, handle_signals=True)
