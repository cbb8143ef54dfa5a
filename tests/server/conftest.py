"""Fixtures shared by the server tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from server.cache.protocol import ResultCache
from server.cache.store_memory import InMemoryCacheStore
from server.cache.store_redis import RedisCacheStore
from tests.cache_support import delete_namespace, unique_namespace
from tests.redis_support import require_redis_url


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[ResultCache]:
    """Each result-cache store in turn: the in-process LRU, and Redis in a fresh namespace."""
    if request.param == "memory":
        yield InMemoryCacheStore(max_bytes=1024 * 1024)
        return
    client = Redis.from_url(require_redis_url())
    namespace = unique_namespace()
    yield RedisCacheStore(client, namespace=namespace, timeout=1.0)
    await delete_namespace(client, namespace)
    await client.aclose()
