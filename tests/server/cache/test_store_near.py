"""The near store over real Redis: hits without a round trip, fills from Redis on a near miss,
and coherence through published invalidations (two stores stand for two processes)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

import pytest
from redis.asyncio import Redis

from server.cache.near_cache import NearCache
from server.cache.protocol import ALL_TYPES
from server.cache.store_near import NearCacheStore
from server.cache.store_redis import RedisCacheStore, Stored
from tests.cache_support import delete_namespace, unique_namespace
from tests.redis_support import require_redis_url

HEARTBEAT = 0.2
BOUND = 2.0  # seconds an invalidation may take to reach another store on a loaded machine


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


class Reads:
    """Counts the Redis reads of a near store's inner store."""

    def __init__(self, store: NearCacheStore) -> None:
        self.count = 0
        real = store.inner.read

        async def counted(keys: Sequence[str]) -> list[Stored | None]:
            self.count += 1
            return await real(keys)

        store.inner.read = counted  # type: ignore[method-assign]


async def eventually(condition: Callable[[], bool], within: float = BOUND) -> float:
    """Seconds until `condition` held; fails past `within`."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > within:
            pytest.fail(f"not within {within} s")
        await asyncio.sleep(0.005)
    return time.monotonic() - start


@asynccontextmanager
async def near_store(client: Redis, namespace: str) -> AsyncIterator[NearCacheStore]:
    inner = RedisCacheStore(client, namespace=namespace, timeout=1.0)
    store = NearCacheStore(
        inner, NearCache(max_bytes=1 << 20), redis_url=require_redis_url(), heartbeat=HEARTBEAT
    )
    store.start()
    try:
        await eventually(lambda: store.usable)
        yield store
    finally:
        await store.close()


async def _put(store: NearCacheStore | RedisCacheStore, key: str, value: bytes, tag: str) -> None:
    since = await store.snapshot()
    assert await store.put(key, value, tags=[tag], ttl=60, since=since)


def _same(raw: bytes) -> bytes:
    return raw


async def test_a_near_hit_reads_nothing_from_redis_and_a_near_miss_reads_once(
    client: Redis, namespace: str
) -> None:
    async with near_store(client, namespace) as first, near_store(client, namespace) as second:
        await _put(first, "k", b"answer", "Product:1")
        reads = Reads(first), Reads(second)

        assert await first.get_decoded(["k"], _same) == [b"answer"]  # kept when it stored it
        assert await second.get_decoded(["k"], _same) == [b"answer"]  # a near miss: Redis
        for _ in range(5):
            assert await first.get_decoded(["k"], _same) == [b"answer"]
            assert await second.get_decoded(["k"], _same) == [b"answer"]

    assert [r.count for r in reads] == [0, 1]


async def test_an_invalidation_reaches_the_other_store_within_the_bound(
    client: Redis, namespace: str
) -> None:
    async with near_store(client, namespace) as first, near_store(client, namespace) as second:
        await _put(first, "k", b"old", "Product:1")
        await second.get_decoded(["k"], _same)
        assert "k" in second.near

        await first.invalidate(["Product:1"])

        assert "k" not in first.near  # its own, before invalidate returned
        await eventually(lambda: "k" not in second.near)
        assert await second.get_decoded(["k"], _same) == [None]


async def test_a_purge_from_a_plain_redis_store_empties_the_near_caches(
    client: Redis, namespace: str
) -> None:
    """`storefront cache purge` uses a RedisCacheStore of its own: its scripts publish too."""
    purger = RedisCacheStore(client, namespace=namespace, timeout=1.0)
    async with near_store(client, namespace) as store:
        await _put(store, "product", b"p", "Product:1")
        await _put(store, "user", b"u", "User:1")

        await purger.invalidate_types(["Product"])
        await eventually(lambda: "product" not in store.near)
        assert "user" in store.near

        await purger.invalidate_types([ALL_TYPES])
        await eventually(lambda: len(store.near) == 0)
        assert await store.get_decoded(["product", "user"], _same) == [None, None]


async def test_an_answer_overtaken_by_an_invalidation_is_served_but_not_kept(
    client: Redis, namespace: str
) -> None:
    async with near_store(client, namespace) as store:
        writer = RedisCacheStore(client, namespace=namespace, timeout=1.0)
        await _put(writer, "k", b"old", "Product:1")
        real = store.inner.read

        async def crossed(keys: Sequence[str]) -> list[Stored | None]:
            found = await real(keys)
            # The invalidation's message arrives before the read's answer is handled.
            store.apply(b'{"k": [], "t": ["Order"]}')
            return found

        store.inner.read = crossed  # type: ignore[method-assign]
        assert await store.get_decoded(["k"], _same) == [b"old"]
        assert "k" not in store.near


async def test_the_absent_alternative_of_a_found_key_needs_no_read(
    client: Redis, namespace: str
) -> None:
    async with near_store(client, namespace) as store:
        writer = RedisCacheStore(client, namespace=namespace, timeout=1.0)
        await _put(writer, "public", b"p", "Product:1")
        reads = Reads(store)

        for _ in range(3):
            assert await store.get_decoded(["public", "viewer"], _same) == [b"p", None]
        # Alone, a key nothing was found with is not remembered absent (a filler polls it).
        for _ in range(2):
            assert await store.get_decoded(["nothing"], _same) == [None]

    assert reads.count == 1 + 2


async def test_the_public_key_next_to_a_viewers_entry_kept_near_is_read_once(
    client: Redis, namespace: str
) -> None:
    """A private answer: the lookup asks for the public key first, which is never there."""
    async with near_store(client, namespace) as store:
        await _put(store, "viewer", b"v", "Order:1")  # kept near as it is stored
        reads = Reads(store)

        for _ in range(3):
            assert await store.get_decoded(["public", "viewer"], _same) == [None, b"v"]

    assert reads.count == 1


async def test_without_a_live_subscription_every_read_goes_to_redis(
    client: Redis, namespace: str
) -> None:
    async with near_store(client, namespace) as store:
        await _put(store, "k", b"v", "Product:1")
        reads = Reads(store)
        await store.listener.close()  # as if the subscription were lost

        assert not store.usable
        assert len(store.near) == 0
        for _ in range(3):
            assert await store.get_decoded(["k"], _same) == [b"v"]
        assert len(store.near) == 0

    assert reads.count == 3


async def test_the_subscription_comes_back_after_its_connection_is_killed(
    client: Redis, namespace: str
) -> None:
    async with near_store(client, namespace) as store:
        await _put(store, "k", b"v", "Product:1")
        before = store.listener.connections

        killed = await _kill_client(client, store.listener.client_name)

        assert killed == 1
        await eventually(lambda: store.listener.connections > before)
        await eventually(lambda: store.usable)
        assert "k" not in store.near  # emptied: what was published meanwhile is lost


async def _kill_client(client: Redis, name: str) -> int:
    clients: list[dict[str, object]] = await client.client_list()
    killed = 0
    for found in clients:
        if found.get("name") == name:
            killed += await client.client_kill_filter(_id=str(found["id"]))
    return killed


async def test_a_peek_answers_only_what_the_near_cache_knows_and_reads_nothing(
    client: Redis, namespace: str
) -> None:
    async with near_store(client, namespace) as first, near_store(client, namespace) as second:
        await _put(first, "k", b"answer", "Product:1")
        reads = Reads(second)

        assert first.peek_decoded(["k"], _same) == [b"answer"]  # kept when it stored it
        assert second.peek_decoded(["k"], _same) is None  # only Redis knows: no answer
        await second.get_decoded(["k", "other"], _same)  # a read keeps "other" absent
        assert second.peek_decoded(["k", "other"], _same) == [b"answer", None]
        await first.invalidate(["Product:1"])
        await eventually(lambda: "k" not in second.near)
        assert second.peek_decoded(["k"], _same) is None

        await second.listener.close()  # no proof of the subscription: nothing near is used
        await _put(second, "j", b"x", "Product:2")
        assert second.peek_decoded(["j"], _same) is None
    assert reads.count == 1
