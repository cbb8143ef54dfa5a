"""The Redis guard: its bound and its breaker, alone (a fake clock) and in front of each
store over a real, frozen `redis-server`."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from server.cache.protocol import CacheUnavailable
from server.cache.store_redis import RedisCacheStore
from server.persisted.protocol import PersistedQueryStoreUnavailable
from server.persisted.stores import RedisPersistedQueryStore
from server.ratelimit.buckets import RedisRateLimiter
from server.ratelimit.protocol import BucketPolicy, RateLimiterUnavailable
from server.redis_guard import FAILURES_TO_OPEN, RedisGuard, bounded_client
from tests.cache_support import RedisProcess, redis_process

LOGGER = "storefront.test_guard"


class Down(Exception):
    """What the guarded store raises."""


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def guard(clock: Clock) -> RedisGuard:
    return RedisGuard(
        "test store",
        timeout=0.05,
        retry_after=1.0,
        error=Down,
        logger=logging.getLogger(LOGGER),
        fallback="doing without",
        clock=clock,
    )


async def fail(guard: RedisGuard, error: Exception | None = None) -> None:
    with pytest.raises(Down):
        async with guard.bounded():
            raise error or RedisTimeoutError("Timeout reading from socket")


async def succeed(guard: RedisGuard) -> bool:
    """Runs an empty call; whether its block ran (False: refused by the breaker)."""
    ran = False
    try:
        async with guard.bounded():
            ran = True
    except Down:
        pass
    return ran


async def test_failures_in_a_row_open_the_breaker(guard: RedisGuard) -> None:
    for _ in range(FAILURES_TO_OPEN - 1):
        await fail(guard)
    assert await succeed(guard)  # a success starts the count again
    for _ in range(FAILURES_TO_OPEN - 1):
        await fail(guard)
    assert not guard.is_open  # one late answer may be the event loop's, not Redis's

    await fail(guard)

    assert guard.is_open
    assert not await succeed(guard)  # refused without running


async def test_a_refused_connection_opens_it_at_once(guard: RedisGuard) -> None:
    await fail(guard, RedisConnectionError("Error 111 connecting to 127.0.0.1:1."))
    assert guard.is_open
    await fail(guard, OSError("network is unreachable"))  # refused at once, also Down
    assert guard.is_open


async def test_after_retry_after_one_probe_at_a_time_closes_it(
    guard: RedisGuard, clock: Clock
) -> None:
    await fail(guard, RedisConnectionError("refused"))
    clock.now += 0.9
    assert not await succeed(guard)
    clock.now += 0.2  # past retry_after: half-open
    answered = asyncio.Event()

    async def probe() -> None:
        async with guard.bounded():
            await answered.wait()

    probing = asyncio.create_task(probe())
    await asyncio.sleep(0)
    assert not await succeed(guard)  # the probe is out: everyone else still does without
    answered.set()
    await probing

    assert not guard.is_open
    assert await succeed(guard)


async def test_a_failed_probe_opens_it_again(guard: RedisGuard, clock: Clock) -> None:
    for _ in range(FAILURES_TO_OPEN):
        await fail(guard)
    clock.now += 1.1

    await fail(guard)  # one failure is enough in half-open

    assert guard.is_open
    clock.now += 0.9
    assert not await succeed(guard)
    clock.now += 0.2
    assert await succeed(guard)


async def test_a_late_call_is_cut_at_twice_the_bound(guard: RedisGuard) -> None:
    started = time.monotonic()
    with pytest.raises(Down) as raised:
        async with guard.bounded():
            await asyncio.sleep(10)  # a client without socket timeouts, waiting on Redis
    assert time.monotonic() - started < 1
    assert isinstance(raised.value.__cause__, TimeoutError)


async def test_other_errors_pass_through_and_do_not_count(guard: RedisGuard) -> None:
    for _ in range(FAILURES_TO_OPEN + 1):
        with pytest.raises(ValueError, match="a bug"):
            async with guard.bounded():
                raise ValueError("a bug")
    assert not guard.is_open


async def test_the_outage_is_logged_once_a_minute_and_its_end_once(
    guard: RedisGuard, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    for _ in range(10):
        await fail(guard)
        clock.now += 1.5  # each one a probe after the breaker opened
    clock.now += 60
    await fail(guard)
    clock.now += 1.5
    assert await succeed(guard)
    assert await succeed(guard)

    messages = [record.getMessage() for record in caplog.records]
    assert messages == [
        "test store: Redis unavailable (Timeout reading from socket); doing without",
        "test store: Redis unavailable (Timeout reading from socket); doing without",
        "test store: Redis answers again",
    ]


# Each store in front of a frozen redis-server ------------------------------------------

Call = Callable[[], Awaitable[object]]
POLICY = BucketPolicy(maximum=10, restore_rate=1)


@pytest.fixture
async def own_redis(tmp_path: Path) -> AsyncIterator[RedisProcess]:
    async with redis_process(tmp_path) as server:
        yield server


def _store_call(kind: str, client: Redis) -> tuple[Call, type[Exception]]:
    if kind == "rate limiter":
        limiter = RedisRateLimiter(client, timeout=0.05, retry_after=0.3)
        return (lambda: limiter.reserve("ip:203.0.113.7", 1, POLICY)), RateLimiterUnavailable
    if kind == "persisted queries":
        store = RedisPersistedQueryStore(client, apq_ttl_seconds=60, timeout=0.05, retry_after=0.3)
        return (lambda: store.get_automatic("0" * 64)), PersistedQueryStoreUnavailable
    cache = RedisCacheStore(client, timeout=0.05, retry_after=0.3)
    return (lambda: cache.get(["k"])), CacheUnavailable


async def _answers(call: Call, unavailable: type[Exception], seconds: float) -> None:
    """Calls until Redis answers: on a loaded machine a healthy Redis can be late too."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            await call()
            return
        except unavailable:
            assert time.monotonic() < deadline, "Redis never answered"
            await asyncio.sleep(0.1)


@pytest.mark.parametrize("kind", ["rate limiter", "persisted queries", "result cache"])
async def test_a_frozen_redis_costs_the_bound_a_few_times_then_nothing(
    own_redis: RedisProcess, kind: str
) -> None:
    client = bounded_client(own_redis.url, timeout=0.05)
    call, unavailable = _store_call(kind, client)
    await _answers(call, unavailable, 5)  # a connection in the pool, as in a running server
    await asyncio.sleep(0.4)  # past any retry delay a late answer may have started

    own_redis.pause()
    try:
        waits = []
        for _ in range(FAILURES_TO_OPEN + 3):
            started = time.monotonic()
            with pytest.raises(unavailable):
                await call()
            waits.append(time.monotonic() - started)
    finally:
        own_redis.resume()

    # The bound is 50 ms (socket timeouts; the guard cuts at 100 ms): generous slack for
    # a loaded machine, far below the 2 s a frozen Redis used to cost. Once open, no call
    # waits for Redis at all (asking it would take the bound, 50 ms).
    assert all(0.03 <= wait < 0.5 for wait in waits[:FAILURES_TO_OPEN]), waits
    assert all(wait < 0.045 for wait in waits[FAILURES_TO_OPEN:]), waits
    await _answers(call, unavailable, 5)  # after retry_after a call probes, and Redis answers
    await client.aclose()
