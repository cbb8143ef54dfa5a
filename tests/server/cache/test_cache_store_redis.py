"""The Redis result-cache store: its layout, TTLs, bounded scripts, and failing open."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from redis.asyncio import Redis

from server.cache import store_redis as cache_store_redis
from server.cache.protocol import CacheUnavailable
from server.cache.store_redis import RedisCacheStore
from server.redis_guard import FAILURES_TO_OPEN, bounded_client
from tests.cache_support import RedisProcess, delete_namespace, redis_process, unique_namespace
from tests.redis_support import require_redis_url


@pytest.fixture
async def client() -> AsyncIterator[Redis]:
    client = Redis.from_url(require_redis_url())
    yield client
    await client.aclose()


@pytest.fixture
async def namespace(client: Redis) -> AsyncIterator[str]:
    namespace = unique_namespace()
    yield namespace
    await delete_namespace(client, namespace)


@pytest.fixture
def store(client: Redis, namespace: str) -> RedisCacheStore:
    return RedisCacheStore(client, namespace=namespace, timeout=1.0)


async def keys_of(client: Redis, namespace: str) -> dict[str, int]:
    """Every key of the namespace (without it), with its TTL in ms."""
    found = {}
    async for key in client.scan_iter(match=namespace + ":*"):
        found[key.decode()[len(namespace) + 1 :]] = await client.pttl(key)
    return found


async def test_the_layout_and_every_key_has_a_ttl(
    client: Redis, namespace: str, store: RedisCacheStore
) -> None:
    since = await store.snapshot()
    await store.put("abc", b"v", tags=["Product:1", "Product:list"], ttl=60, since=since)
    await store.put_entities({"User:7": b"u"}, ttl=30, since=since)
    await store.invalidate(["Review:list:product_id=1"])
    await store.invalidate_types(["Category"])
    await store.lock("abc", 5)

    keys = await keys_of(client, namespace)

    assert set(keys) == {
        "r:abc",
        "t:Product:1",
        "t:Product:list",
        "e:User:7",
        "tv:Review:list:product_id=1",
        "clock",
        "gen",
        "lock:abc",
    }
    assert all(ttl > 0 for ttl in keys.values()), keys
    assert keys["t:Product:1"] >= keys["r:abc"] - 50


async def test_a_tag_set_lives_as_long_as_its_longest_member_and_sheds_expired_ones(
    client: Redis, namespace: str, store: RedisCacheStore
) -> None:
    since = await store.snapshot()
    await store.put("long", b"v", tags=["Product:1"], ttl=60, since=since)
    await store.put("short", b"v", tags=["Product:1"], ttl=0.05, since=since)
    assert await client.pttl(f"{namespace}:t:Product:1") > 50_000

    await asyncio.sleep(0.1)
    since = await store.snapshot()
    await store.put("other", b"v", tags=["Product:1"], ttl=60, since=since)

    members = await client.zrange(f"{namespace}:t:Product:1", 0, -1)
    assert sorted(members) == [f"{namespace}:r:long".encode(), f"{namespace}:r:other".encode()]


async def test_a_huge_tag_is_invalidated_in_constant_time_by_its_type_generation(
    client: Redis, namespace: str, store: RedisCacheStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cache_store_redis, "MAX_TAG_MEMBERS", 3)
    since = await store.snapshot()
    for i in range(5):
        await store.put(f"list{i}", b"v", tags=["Product:list"], ttl=60, since=since)
    await store.put("review", b"v", tags=["Review:1"], ttl=60, since=since)

    await store.invalidate(["Product:list"])

    assert orjson.loads(await client.get(f"{namespace}:gen")) == {"Product": 1}
    assert await client.exists(f"{namespace}:r:list0")  # left to expire, unreadable
    values = await store.get([f"list{i}" for i in range(5)] + ["review"])
    assert values == [None] * 5 + [b"v"]


async def test_an_unreachable_redis_fails_open_fast_and_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = bounded_client("redis://127.0.0.1:1/0", timeout=0.05)
    store = RedisCacheStore(client, timeout=0.05, retry_after=0.0)
    caplog.set_level(logging.WARNING, logger="storefront.cache")
    started = time.monotonic()

    for _ in range(3):
        with pytest.raises(CacheUnavailable):
            await store.get(["k"])
    await store.invalidate(["Product:1"])  # kept for later, never raised

    assert time.monotonic() - started < 1
    assert len([r for r in caplog.records if "result cache: Redis unavailable" in r.message]) == 1
    await client.aclose()


async def test_a_redis_slower_than_the_bound_fails_open() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.read(-1)  # accepts, never answers
        finally:
            writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = bounded_client(f"redis://127.0.0.1:{port}/0", timeout=0.05)
    store = RedisCacheStore(client, timeout=0.05)
    started = time.monotonic()

    with pytest.raises(CacheUnavailable):
        await store.get(["k"])

    assert time.monotonic() - started < 0.5
    await client.aclose()
    server.close()
    await server.wait_closed()


async def test_one_late_answer_does_not_keep_the_store_away_but_several_do() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.read(-1)
        finally:
            writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = bounded_client(f"redis://127.0.0.1:{port}/0", timeout=0.05)
    store = RedisCacheStore(client, timeout=0.05, retry_after=60)

    waits = []
    for _ in range(FAILURES_TO_OPEN + 1):
        started = time.monotonic()
        with pytest.raises(CacheUnavailable):
            await store.get(["k"])
        waits.append(time.monotonic() - started)

    assert all(wait >= 0.04 for wait in waits[:-1])  # each one asked Redis
    assert waits[-1] < 0.01  # then the store stayed away
    await client.aclose()
    server.close()
    await server.wait_closed()


@pytest.fixture
async def own_redis(tmp_path: Path) -> AsyncIterator[RedisProcess]:
    async with redis_process(tmp_path) as server:
        yield server


async def test_an_invalidation_redis_missed_is_replayed_before_serving_again(
    own_redis: RedisProcess,
) -> None:
    client = bounded_client(own_redis.url, timeout=0.05)
    admin = Redis.from_url(own_redis.url)
    store = RedisCacheStore(client, timeout=0.05, retry_after=0.2)
    since = await store.snapshot()
    await store.put("k", b"old", tags=["Product:1"], ttl=60, since=since)

    await admin.execute_command("CLIENT", "PAUSE", 300, "ALL")
    with pytest.raises(CacheUnavailable):
        await store.get(["k"])  # too slow: Redis is held down for a while
    await store.invalidate(["Product:1"])  # not sent: kept
    with pytest.raises(CacheUnavailable):
        await store.get(["k"])

    await asyncio.sleep(0.4)  # Redis answers again, the retry delay is over
    assert await store.get(["k"]) == [None]
    await client.aclose()
    await admin.aclose()


async def test_the_store_resumes_on_its_own_when_redis_returns(own_redis: RedisProcess) -> None:
    client = bounded_client(own_redis.url, timeout=0.2)
    store = RedisCacheStore(client, timeout=0.2, retry_after=0.1)
    await store.snapshot()

    await own_redis.stop()
    with pytest.raises(CacheUnavailable):
        await store.get(["k"])
    await own_redis.start()
    await asyncio.sleep(0.15)

    since = await store.snapshot()
    assert await store.put("k", b"v", tags=[], ttl=60, since=since)
    assert await store.get(["k"]) == [b"v"]
    await client.aclose()


async def test_an_operator_drops_everything_by_setting_a_new_generation(
    client: Redis, namespace: str, store: RedisCacheStore
) -> None:
    """The README's command after a write behind the API's back."""
    since = await store.snapshot()
    await store.put("k", b"v", tags=["Product:1"], ttl=60, since=since)
    await store.put_entities({"User:1": b"u"}, ttl=60, since=since)

    await client.set(f"{namespace}:gen", b'{"*": 1764000000}', px=604_800_000)

    assert await store.get(["k"]) == [None]
    assert (await store.get_entities(["User:1"]))[0] == [None]
    await store.invalidate_types(["Product"])
    assert orjson.loads(await client.get(f"{namespace}:gen")) == {"*": 1764000000, "Product": 1}
