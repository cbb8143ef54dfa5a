"""The near cache through HTTP: two app instances sharing one Redis of the test's own, whose
`INFO commandstats` counts every command (nobody else uses that server)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from redis.asyncio import Redis

from resolvers.tokens import create_token
from schema.global_id import to_global_id
from server.cache.store_near import NearCacheStore
from server.cache.store_redis import RedisCacheStore
from tests.cache_support import RedisProcess, cache_env, redis_process
from tests.conftest import Api, Database
from tests.factories import Factory
from tests.server.apps import serve

READ = "query Name($id: ID!) { product(id: $id) { name } }"
WRITE = """mutation Rename($id: ID!, $name: String!) {
  updateProduct(id: $id, input: {name: $name}) { name }
}"""
BOUND = 1.0  # seconds a write on one instance may take to reach the other's near cache
# Commands that are not the cache's own reads and writes: the listener's heartbeat, our INFO.
NOT_COUNTED = {"ping", "info", "client|setname", "hello", "subscribe", "client|setinfo"}


@pytest.fixture
async def own_redis(tmp_path: Path) -> AsyncIterator[RedisProcess]:
    async with redis_process(tmp_path) as server:
        yield server


@pytest.fixture
async def commands(own_redis: RedisProcess) -> AsyncIterator[Commands]:
    counter = Commands(own_redis.url)
    yield counter
    await counter.client.aclose()


class Commands:
    """Commands the Redis server ran, from INFO commandstats deltas."""

    def __init__(self, url: str) -> None:
        self.client = Redis.from_url(url)

    async def counts(self) -> Counter[str]:
        stats = await self.client.info("commandstats")
        return Counter({name[len("cmdstat_") :]: int(s["calls"]) for name, s in stats.items()})

    async def during(self, run: Callable[[], Awaitable[object]]) -> Counter[str]:
        before = await self.counts()
        await run()
        delta = await self.counts() - before
        for name in NOT_COUNTED:
            delta.pop(name, None)
        return delta


def near_of(api: Api) -> NearCacheStore:
    caches = api.services.caches
    assert caches is not None
    assert isinstance(caches.store, NearCacheStore)
    return caches.store


async def until(condition: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def name_of(api: Api, product: str) -> tuple[str, str]:
    response = await api.post(READ, {"id": product})
    assert response.status_code == 200, response.text
    return response.json()["data"]["product"]["name"], response.headers["x-cache"]


def settings_for(redis: RedisProcess, **env: str) -> dict[str, str]:
    return cache_env("redis", redis.url, RATE_LIMIT_ENABLED="false", **env)


async def test_a_near_hit_makes_no_redis_command_and_a_near_miss_one_read(
    db: Database, factory: Factory, own_redis: RedisProcess, commands: Commands
) -> None:
    product = to_global_id("Product", await factory.product(name="Lamp"))
    env = settings_for(own_redis)
    async with serve(db, **env) as first, serve(db, **env) as second:
        await until(lambda: near_of(first).usable and near_of(second).usable)
        assert await name_of(first, product) == ("Lamp", "MISS")

        # The other instance has never seen it: one read from Redis, then it keeps it.
        near_miss = await commands.during(lambda: name_of(second, product))
        hits = await commands.during(
            lambda: asyncio.gather(*(name_of(api, product) for api in (first, second) * 10))
        )
        answers = await asyncio.gather(*(name_of(api, product) for api in (first, second)))

    assert near_miss == Counter({"mget": 1})
    assert hits == Counter()
    assert answers == [("Lamp", "HIT")] * 2


async def test_without_the_near_cache_every_hit_reads_redis(
    db: Database, factory: Factory, own_redis: RedisProcess, commands: Commands
) -> None:
    """The count above can see a read: with CACHE_NEAR_BYTES=0 each hit is one MGET."""
    product = to_global_id("Product", await factory.product(name="Lamp"))
    env = settings_for(own_redis, CACHE_NEAR_BYTES="0")
    async with serve(db, **env) as api:
        await name_of(api, product)
        hits = await commands.during(
            lambda: asyncio.gather(*(name_of(api, product) for _ in range(5)))
        )

    assert hits == Counter({"mget": 5})


async def test_a_write_on_one_instance_reaches_the_others_near_cache_within_the_bound(
    db: Database, factory: Factory, own_redis: RedisProcess
) -> None:
    product = to_global_id("Product", await factory.product(name="Old name"))
    await factory.user(email="admin@example.com", role="admin")
    admin = (await create_token(sessionmaker=db.sessionmaker, email="admin@example.com")).token
    env = settings_for(own_redis)
    async with serve(db, **env) as first, serve(db, **env) as second:
        await until(lambda: near_of(first).usable and near_of(second).usable)
        for api in (first, second, first, second):
            await name_of(api, product)
        assert [await name_of(api, product) for api in (first, second)] == [("Old name", "HIT")] * 2

        renamed = await first.post(WRITE, {"id": product, "name": "New name"}, token=admin)
        written_at = time.monotonic()
        assert renamed.json()["data"] == {"updateProduct": {"name": "New name"}}, renamed.text

        # The writer's own process: fresh at once.
        assert await name_of(first, product) == ("New name", "MISS")
        # The other: fresh as soon as the message arrives, well within the bound.
        seen = [await name_of(second, product)]
        while seen[-1][0] != "New name" and time.monotonic() - written_at < BOUND:
            await asyncio.sleep(0.002)
            seen.append(await name_of(second, product))
        took = time.monotonic() - written_at

    assert seen[-1] == ("New name", "HIT"), seen  # the writer's answer, stored in Redis
    assert took < BOUND


async def test_a_purge_while_the_subscription_is_down_is_never_served_stale(
    db: Database, factory: Factory, own_redis: RedisProcess, commands: Commands
) -> None:
    """The subscription is cut, a purge is published while nobody listens: once
    subscribed again the near cache starts empty, so the purge is not missed."""
    product = to_global_id("Product", await factory.product(name="Lamp"))
    env = settings_for(own_redis)
    purger = RedisCacheStore(commands.client)
    async with serve(db, **env) as api:
        store = near_of(api)
        await until(lambda: store.usable)
        await name_of(api, product)
        assert await name_of(api, product) == ("Lamp", "HIT")
        connections = store.listener.connections

        killed = await commands.client.client_kill_filter(_type="pubsub")
        await purger.invalidate_types(["Product"])
        answers = [await name_of(api, product)]
        while store.listener.connections == connections:
            answers.append(await name_of(api, product))
            await asyncio.sleep(0.01)
        await until(lambda: store.usable)
        after = await name_of(api, product)

    assert killed == 2  # the near cache's subscription and the events channel's
    assert answers[0][1] == "MISS"  # not the near entry the purge dropped
    assert all(state != "HIT" or i > 0 for i, (_, state) in enumerate(answers))
    assert after == ("Lamp", "HIT")


async def test_a_frozen_redis_turns_the_near_cache_off_within_two_heartbeats(
    db: Database, factory: Factory, own_redis: RedisProcess
) -> None:
    """A connection that goes silent (no error, no answer) is caught by the heartbeat:
    the near cache stops serving, then requests go to Redis and fail open."""
    product = to_global_id("Product", await factory.product(name="Lamp"))
    env = settings_for(own_redis, CACHE_NEAR_HEARTBEAT_MS="200", CACHE_REDIS_TIMEOUT_MS="200")
    async with serve(db, **env) as api:
        store = near_of(api)
        await until(lambda: store.usable)
        await name_of(api, product)
        assert await name_of(api, product) == ("Lamp", "HIT")

        own_redis.pause()
        try:
            frozen_at = time.monotonic()
            await until(lambda: not store.listener.live, within=2.0)
            off_after = time.monotonic() - frozen_at
            during = await name_of(api, product)
        finally:
            own_redis.resume()
        await until(lambda: store.usable)
        back = [await name_of(api, product) for _ in range(3)]

    assert off_after <= 2 * 0.2 + 0.3  # two heartbeats, and a loaded machine's slack
    assert during == ("Lamp", "BYPASS")
    assert back[-1] == ("Lamp", "HIT")


async def test_the_near_cache_holds_to_its_bytes(
    db: Database, factory: Factory, own_redis: RedisProcess
) -> None:
    products = [to_global_id("Product", await factory.product(name=f"P{i}")) for i in range(12)]
    env = settings_for(own_redis, CACHE_NEAR_BYTES="2000")
    async with serve(db, **env) as api:
        store = near_of(api)
        await until(lambda: store.usable)
        sizes = []
        for product in products:
            await name_of(api, product)
            sizes.append(store.near.size)
        kept = len(store.near)
        last = await name_of(api, products[-1])

    assert max(sizes) <= 2000
    assert 0 < kept < len(products)
    assert last == ("P11", "HIT")
