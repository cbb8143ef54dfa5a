"""Shared by the bench scripts: the database URL, the in-process app and a statement recorder."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from sqlalchemy import event
from starlette.applications import Starlette

from server.app import create_app
from server.services import Services, services_of
from server.settings import Settings

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/bench_medium"

DASHBOARD = (
    "query($n: Int!) { orders(first: $n) { edges { node { customer { name } "
    "items { quantity product { name averageRating category { name } } } } } } }"
)
ADMIN_EMAIL = "bench-admin@example.com"

# Rate limits stay on (their cost is part of a request) but so high that the
# benchmark's bursts of requests from one client are never throttled.
UNTHROTTLED = {
    "RATE_LIMIT_MAXIMUM": "1000000000",
    "RATE_LIMIT_RESTORE_RATE": "1000000000",
    "ADMIN_RATE_LIMIT_MAXIMUM": "1000000000",
    "ADMIN_RATE_LIMIT_RESTORE_RATE": "1000000000",
}


def asyncpg_dsn(database_url: str) -> str:
    """The plain `postgresql://` DSN asyncpg takes, from any PostgreSQL URL form."""
    scheme, sep, rest = database_url.partition("://")
    if not sep or not scheme.startswith("postgres"):
        raise SystemExit(f"not a PostgreSQL URL: {database_url}")
    return "postgresql://" + rest


@dataclass
class StatementRecorder:
    """Records (statement, parameters) of every statement an engine sends."""

    statements: list[tuple[str, Any]] = field(default_factory=list)

    def __call__(
        self, _conn: Any, _cursor: Any, statement: str, parameters: Any, *_args: Any
    ) -> None:
        self.statements.append((statement, parameters))

    def clear(self) -> None:
        self.statements.clear()


@dataclass
class InProcessApp:
    app: Starlette
    client: httpx.AsyncClient
    recorder: StatementRecorder

    @property
    def services(self) -> Services:
        return services_of(self.app)

    async def post(self, query: str, variables: dict[str, Any], token: str | None) -> Any:
        """POST a GraphQL request; the JSON body (raises on HTTP errors or GraphQL errors)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = await self.client.post(
            "/graphql", json={"query": query, "variables": variables}, headers=headers
        )
        body = response.json()
        if response.status_code != 200 or body.get("errors"):
            raise RuntimeError(f"{response.status_code}: {body}")
        return body["data"]


@contextlib.asynccontextmanager
async def in_process_app(
    database_url: str, extra_env: dict[str, str] | None = None
) -> AsyncIterator[InProcessApp]:
    """The real app over `database_url` through ASGI, its lifespan entered, statements recorded."""
    env = {"DATABASE_URL": database_url, "LOG_LEVEL": "warning", **UNTHROTTLED, **(extra_env or {})}
    app = create_app(Settings.from_env(env))
    async with LifespanManager(app) as manager:
        recorder = StatementRecorder()
        event.listen(services_of(app).engine.sync_engine, "before_cursor_execute", recorder)
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            yield InProcessApp(app, client, recorder)


async def admin_token(app: Starlette, email: str = ADMIN_EMAIL) -> str:
    """A fresh admin token (the user is created if new)."""
    from resolvers.tokens import create_token

    issued = await create_token(
        sessionmaker=services_of(app).sessionmaker, email=email, role="admin"
    )
    return issued.token
