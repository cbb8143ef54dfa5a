"""An app over the test database with settings of a test's own (small limits, tiny buckets)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
from asgi_lifespan import LifespanManager

from server.app import create_app
from server.settings import Settings
from tests.conftest import Api, Database


@contextlib.asynccontextmanager
async def serve(db: Database, **env: str) -> AsyncIterator[Api]:
    """The real app over `db` with environment `env` added, through ASGI, lifespan entered."""
    # Queries compared on both executors, as for `api` (tests/conftest.py).
    app = create_app(Settings.from_env({**db.env, **env}))
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield Api(client, app, db)
