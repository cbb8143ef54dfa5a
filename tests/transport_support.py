"""Building the real app with extra settings, over the persisted-query store under test."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from redis.asyncio import Redis

from server.app import create_app
from server.persisted.protocol import sha256_hex
from server.settings import Settings
from tests.conftest import Api, Database
from tests.redis_support import clear_persisted, require_redis_url

GQL_JSON = "application/graphql-response+json"
STORES = ["memory", "redis"]


@contextlib.asynccontextmanager
async def store_env(store: str) -> AsyncIterator[dict[str, str]]:
    """Settings selecting the store: none for in-process, REDIS_URL (keys cleared) for Redis."""
    if store == "memory":
        yield {}
        return
    url = require_redis_url()
    client = Redis.from_url(url)
    await clear_persisted(client)
    try:
        # A second, not 50 ms: a loaded test machine can be that late by itself.
        yield {"REDIS_URL": url, "REDIS_TIMEOUT_MS": "1000"}
    finally:
        await clear_persisted(client)
        await client.aclose()


@contextlib.asynccontextmanager
async def app_api(db: Database, env: dict[str, str]) -> AsyncIterator[Api]:
    """The app over `db` with `env` settings, through ASGI with its lifespan."""
    app = create_app(
        Settings.from_env(
            {"DATABASE_URL": db.url, "CACHE_ENABLED": "false", "GC_TUNING": "false", **env}
        )
    )
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield Api(client, app, db)


def persisted(sha256: str, version: Any = 1) -> dict[str, Any]:
    return {"persistedQuery": {"version": version, "sha256Hash": sha256}}


def hash_only(query: str, **extra: Any) -> dict[str, Any]:
    return {"extensions": persisted(sha256_hex(query)), **extra}


def register(query: str, **extra: Any) -> dict[str, Any]:
    return {"query": query, "extensions": persisted(sha256_hex(query)), **extra}


def get_params(payload: dict[str, Any]) -> dict[str, str]:
    """A request's parameters as a GET query string carries them (JSON values encoded)."""
    return {
        key: value if isinstance(value, str) else json.dumps(value)
        for key, value in payload.items()
    }


def codes(body: Any) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors", [])]


def payload(response: httpx.Response) -> Any:
    """The JSON body without the top-level `extensions` (cost) of each result."""
    body = response.json()
    for result in body if isinstance(body, list) else [body]:
        if isinstance(result, dict):
            result.pop("extensions", None)
    return body
