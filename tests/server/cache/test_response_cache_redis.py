"""The response cache over Redis through HTTP: failing open when Redis dies and
resuming when it returns, and one run for misses spread over two instances."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.cache_support import (
    RedisProcess,
    cache_env,
    clear_cache,
    redis_process,
)
from tests.conftest import Database
from tests.factories import Factory
from tests.redis_support import require_redis_url
from tests.server.apps import serve

CATEGORIES = "{ categories { name products { nodes { name } } } }"


@pytest.fixture
async def own_redis(tmp_path: Path) -> AsyncIterator[RedisProcess]:
    async with redis_process(tmp_path) as server:
        yield server


async def test_requests_succeed_while_redis_is_down_and_hits_resume_after(
    db: Database, factory: Factory, own_redis: RedisProcess
) -> None:
    await factory.category(name="Home")
    # Rate limiting is off: this is about the cache failing open, on its own.
    env = cache_env("redis", own_redis.url, RATE_LIMIT_ENABLED="false")
    async with serve(db, **env) as api:
        await api.post(CATEGORIES)
        assert (await api.post(CATEGORIES)).headers["x-cache"] == "HIT"

        await own_redis.stop()
        down = [await api.post(CATEGORIES) for _ in range(3)]
        await own_redis.start()
        await asyncio.sleep(1.1)  # the store retries Redis a second after a failure
        back = [await api.post(CATEGORIES) for _ in range(2)]

    for response in down:
        assert response.status_code == 200
        assert response.headers["x-cache"] == "BYPASS"
        assert response.json()["data"]["categories"][0]["name"] == "Home"
    assert [r.headers["x-cache"] for r in back] == ["MISS", "HIT"]


async def test_misses_spread_over_two_instances_run_once(db: Database, factory: Factory) -> None:
    redis_url = require_redis_url()
    await clear_cache(redis_url)
    category = await factory.category()
    await factory.product(category_id=category)
    # Waiters give the other instance's run up to 5 s: a loaded machine must not split it.
    env = cache_env("redis", redis_url, RATE_LIMIT_ENABLED="false", CACHE_LOCK_WAIT_MS="5000")
    try:
        async with serve(db, **env) as first, serve(db, **env) as second:
            answers = await asyncio.gather(*(api.post(CATEGORIES) for api in (first, second) * 10))
            statements = len(first.statements) + len(second.statements)
            first.statements.clear()
            await first.post(CATEGORIES, headers={"Cache-Control": "no-cache"})
    finally:
        await clear_cache(redis_url)

    assert sorted(a.headers["x-cache"] for a in answers) == ["HIT"] * 19 + ["MISS"]
    assert statements == len(first.statements)
