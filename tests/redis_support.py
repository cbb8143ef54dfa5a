"""Redis for tests: the database TEST_REDIS_URL names; persisted-query keys cleared.

Tests that need Redis skip when TEST_REDIS_URL is not set (CI sets it).
"""

from __future__ import annotations

import os

import pytest
from redis.asyncio import Redis

PERSISTED_PATTERN = "sf:v1:pq:*"


def redis_url() -> str | None:
    return os.environ.get("TEST_REDIS_URL") or None


def require_redis_url() -> str:
    url = redis_url()
    if url is None:
        pytest.skip("TEST_REDIS_URL is not set: Redis backend not configured")
    return url


async def clear_persisted(client: Redis) -> None:
    """Delete the persisted-query keys (never the whole database: others may share it)."""
    keys = [key async for key in client.scan_iter(match=PERSISTED_PATTERN, count=1000)]
    if keys:
        await client.delete(*keys)
