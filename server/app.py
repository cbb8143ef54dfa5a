"""The application factory: routes, middleware and lifespan in one constructor call."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount, Route

from schema import Executor, create_schema
from server.change_feed import ChangeFeed
from server.database import create_engine, create_sessionmaker
from server.graphiql import graphiql_static_app
from server.graphql_view import graphql_endpoint
from server.health import health
from server.log_config import configure_logging
from server.request_id import RequestIdMiddleware
from server.settings import Settings


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
        app.state.executor = Executor(create_schema()._schema)
        app.state.change_feed = ChangeFeed()
        try:
            yield
        finally:
            await engine.dispose()

    return Starlette(
        routes=[
            Route("/graphql", graphql_endpoint, methods=["GET", "POST"]),
            Mount("/graphiql/static", app=graphiql_static_app(), name="graphiql-static"),
            Route("/health", health, methods=["GET"]),
        ],
        middleware=[Middleware(RequestIdMiddleware)],
        lifespan=lifespan,
    )


def create_app_from_env() -> Starlette:
    """Entry point for `uvicorn --factory` (and `storefront serve`)."""
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    return create_app(settings)
