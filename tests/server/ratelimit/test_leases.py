"""Leases of the shared buckets: most charges make no store call, and the over-admission
stays within `processes * spare` (server/ratelimit/leases.py), over HTTP too."""

from __future__ import annotations

import asyncio
import math
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from redis.asyncio import Redis

from server.ratelimit.buckets import KEY_PREFIX, InMemoryRateLimiter, RedisRateLimiter
from server.ratelimit.leases import LeasedRateLimiter
from server.ratelimit.protocol import Bucket, BucketPolicy, RateLimiterUnavailable
from tests.cache_support import RedisProcess, redis_process
from tests.conftest import Database
from tests.live_server import live_server
from tests.server.apps import serve

STILL = BucketPolicy(maximum=1000, restore_rate=0.001)  # share 0.02: a spare of 20
TWO = "{ products(first: 0) { totalCount } }"  # requested and actual cost: exactly 2
# Twenty of those: 40, fully resolved on an empty table (no refund to account for).
FORTY = "{ " + " ".join(f"p{i}: products(first: 0) {{ totalCount }}" for i in range(20)) + " }"


class Counting:
    """A lease store that counts its calls (each one Redis round trip in production)."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.calls: list[tuple[str, float]] = []  # (method, amount given back or settled)

    async def reserve(self, client: str, cost: float, policy: BucketPolicy) -> Bucket:
        self.calls.append(("reserve", 0))
        bucket: Bucket = await self.store.reserve(client, cost, policy)
        return bucket

    async def settle(self, client: str, refund: float, policy: BucketPolicy) -> Bucket:
        self.calls.append(("settle", refund))
        bucket: Bucket = await self.store.settle(client, refund, policy)
        return bucket

    async def lease(
        self, client: str, cost: float, policy: BucketPolicy, *, returned: float, spare: float
    ) -> tuple[Bucket, float]:
        self.calls.append(("lease", returned))
        granted: tuple[Bucket, float] = await self.store.lease(
            client, cost, policy, returned=returned, spare=spare
        )
        return granted


@pytest_asyncio.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Counting]:
    if request.param == "memory":
        yield Counting(InMemoryRateLimiter())
        return
    redis = Redis.from_url(request.getfixturevalue("redis_url"))
    prefix = f"sf:test:{uuid.uuid4().hex}:"
    try:
        yield Counting(RedisRateLimiter(redis, prefix=prefix, timeout=1.0))
    finally:
        keys = [key async for key in redis.scan_iter(match=prefix + "*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()


def _clock() -> tuple[list[float], Callable[[], float]]:
    now = [1000.0]
    return now, lambda: now[0]


async def _shared(store: Counting, client: str = "c", policy: BucketPolicy = STILL) -> float:
    return (await store.store.reserve(client, 0, policy)).available


# The leases, over either store ---------------------------------------------------------


async def test_charges_come_out_of_the_lease(store: Counting) -> None:
    limiter = LeasedRateLimiter(store, share=0.02, seconds=60)
    for spent in range(1, 101):
        bucket = await limiter.reserve("c", 1, STILL)
        assert bucket.allowed
        assert bucket.available == pytest.approx(1000 - spent, abs=0.5)  # one process: exact
    # Each lease takes the cost and a spare of 20: 100 charges of 1, five store calls.
    assert [method for method, _ in store.calls] == ["lease"] * math.ceil(100 / 21)
    held = 5 * 21 - 100
    assert await _shared(store) == pytest.approx(1000 - 100 - held, abs=0.5)


async def test_refunds_stay_in_the_lease_up_to_its_spare(store: Counting) -> None:
    limiter = LeasedRateLimiter(store, share=0.02, seconds=60)
    await limiter.reserve("c", 30, STILL)  # takes 30 + 20; holds 20
    await limiter.settle("c", 25, STILL)  # it is full: all 25 go to the store
    assert store.calls[-1] == ("settle", 25)
    assert await _shared(store) == pytest.approx(1000 - 50 + 25, abs=0.5)
    await limiter.reserve("c", 15, STILL)  # out of the lease: holds 5
    await limiter.settle("c", 10, STILL)  # holds 15: no call
    await limiter.settle("c", 8, STILL)  # holds 20: 3 beyond the spare go to the store
    assert store.calls[-1] == ("settle", 3)
    assert [method for method, _ in store.calls] == ["lease", "settle", "settle"]
    await limiter.settle("c", -30, STILL)  # an overrun beyond what it holds: the rest charged
    assert store.calls[-1] == ("settle", -10)
    assert await _shared(store) == pytest.approx(1000 - 50 + 25 + 3 - 10, abs=0.5)


async def test_an_old_lease_is_given_back_when_renewed(store: Counting) -> None:
    now, clock = _clock()
    limiter = LeasedRateLimiter(store, share=0.02, seconds=1.0, clock=clock)
    await limiter.reserve("c", 5, STILL)  # holds 20
    now[0] += 0.5
    await limiter.reserve("c", 5, STILL)  # still young: holds 15
    now[0] += 0.6
    await limiter.reserve("c", 5, STILL)  # aged out: gives back 15, takes 5 + 20
    assert store.calls == [("lease", 0), ("lease", 15)]
    assert await _shared(store) == pytest.approx(1000 - 15 - 20, abs=0.5)


async def test_a_lease_not_renewed_is_forgotten() -> None:
    now, clock = _clock()
    store = Counting(InMemoryRateLimiter(clock=clock))
    limiter = LeasedRateLimiter(store, share=0.02, seconds=1.0, clock=clock)
    await limiter.reserve("quiet", 1, STILL)
    now[0] += 2
    await limiter.reserve("busy", 1, STILL)  # drops the lease of "quiet"
    await limiter.reserve("quiet", 1, STILL)
    assert store.calls == [("lease", 0), ("lease", 0), ("lease", 0)]  # nothing came back


async def test_a_small_bucket_is_charged_exactly_in_the_store(store: Counting) -> None:
    small = BucketPolicy(maximum=49, restore_rate=0.001)  # 49 * 0.02 < 1: no spare
    limiter = LeasedRateLimiter(store, share=0.02, seconds=60)
    for _ in range(3):
        await limiter.reserve("c", 10, small)
    await limiter.settle("c", 4, small)
    assert [method for method, _ in store.calls] == ["reserve"] * 3 + ["settle"]
    assert await _shared(store, policy=small) == pytest.approx(49 - 30 + 4, abs=0.5)


async def test_a_burst_takes_one_spare(store: Counting) -> None:
    limiter = LeasedRateLimiter(store, share=0.02, seconds=60)
    buckets = await asyncio.gather(*(limiter.reserve("c", 1, STILL) for _ in range(30)))
    assert all(bucket.allowed for bucket in buckets)
    shared = await _shared(store)
    assert shared >= 1000 - 30 - 20 - 0.5  # one spare out of the bucket, not thirty
    lease = await limiter.reserve("c", 0, STILL)  # a read: the store's and the lease's
    assert lease.available == pytest.approx(1000 - 30, abs=0.5)


class Gated(InMemoryRateLimiter):
    """A store whose lease calls wait for `gate`: a renewal held in flight."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.waiting = asyncio.Event()

    async def lease(
        self, client: str, cost: float, policy: BucketPolicy, *, returned: float, spare: float
    ) -> tuple[Bucket, float]:
        self.waiting.set()
        await self.gate.wait()
        return await super().lease(client, cost, policy, returned=returned, spare=spare)


async def test_charges_during_a_renewal_wait_for_it_and_pay_out_of_it() -> None:
    gated = Gated()
    store = Counting(gated)
    limiter = LeasedRateLimiter(store, share=0.02, seconds=60)
    first = asyncio.create_task(limiter.reserve("c", 1, STILL))  # leases 1 + 20
    await gated.waiting.wait()
    others = [asyncio.create_task(limiter.reserve("c", 1, STILL)) for _ in range(10)]
    await asyncio.sleep(0.01)
    assert store.calls == [("lease", 0)]  # they wait: no call of their own
    gated.gate.set()
    buckets = await asyncio.gather(first, *others)
    assert all(bucket.allowed for bucket in buckets)
    assert store.calls == [("lease", 0)]  # all ten paid out of the one spare
    assert (await limiter.reserve("c", 0, STILL)).available == pytest.approx(989, abs=0.5)


async def test_refunds_during_a_renewal_stay_in_the_lease() -> None:
    now, clock = _clock()
    gated = Gated()
    gated.gate.set()
    store = Counting(gated)
    limiter = LeasedRateLimiter(store, share=0.02, seconds=1.0, clock=clock)
    await limiter.reserve("c", 10, STILL)  # holds 20
    now[0] += 2  # aged out: the next charge renews
    gated.gate.clear()
    gated.waiting.clear()
    renewal = asyncio.create_task(limiter.reserve("c", 10, STILL))  # gives back 20
    await gated.waiting.wait()
    for _ in range(3):
        await limiter.settle("c", 4, STILL)  # kept in the lease: no call
    assert [method for method, _ in store.calls] == ["lease", "lease"]
    gated.gate.set()
    assert (await renewal).allowed
    # It took 10 + 20 and keeps the 12 refunded beside them, up to the spare (20): the
    # 12 beyond go back to the store in one call.
    assert store.calls[-1] == ("settle", 12)
    assert await _shared(store) == pytest.approx(1000 - 10 - 10 - 20 + 12, abs=0.5)


async def test_a_read_costs_nothing(store: Counting) -> None:
    limiter = LeasedRateLimiter(store, share=0.02, seconds=60)
    await limiter.reserve("c", 7, STILL)
    assert (await limiter.reserve("c", 0, STILL)).available == pytest.approx(993, abs=0.5)
    assert (await limiter.reserve("c", 0, STILL)).available == pytest.approx(993, abs=0.5)


async def test_processes_overspend_by_at_most_their_spares() -> None:
    """The bound is reached exactly: while two leases hold their spares, the bucket
    refills to its maximum, so a burst then spends maximum + 2 * spare, and no more."""
    now, clock = _clock()
    store = InMemoryRateLimiter(clock=clock)
    policy = BucketPolicy(maximum=100, restore_rate=10)
    one, two = (LeasedRateLimiter(store, share=0.1, seconds=60, clock=clock) for _ in range(2))
    assert (await one.reserve("c", 1, policy)).allowed  # takes 1 + 10
    assert (await two.reserve("c", 1, policy)).allowed  # takes 1 + 10
    now[0] += 20  # the bucket refills to 100; the leases still hold 10 each
    admitted = 0
    for limiter in (one, two, one, two) * 60:
        if (await limiter.reserve("c", 1, policy)).allowed:
            admitted += 1
    assert admitted == 100 + 2 * 10
    assert not (await one.reserve("c", 1, policy)).allowed
    assert not (await two.reserve("c", 1, policy)).allowed


async def test_the_lease_pays_while_the_store_is_away() -> None:
    class Flaky(InMemoryRateLimiter):
        down = False

        async def lease(
            self, client: str, cost: float, policy: BucketPolicy, *, returned: float, spare: float
        ) -> tuple[Bucket, float]:
            if self.down:
                raise RateLimiterUnavailable("down")
            return await super().lease(client, cost, policy, returned=returned, spare=spare)

    store = Flaky()
    limiter = LeasedRateLimiter(store, share=0.02, seconds=60)
    await limiter.reserve("c", 1, STILL)  # holds 20
    store.down = True
    assert (await limiter.reserve("c", 20, STILL)).allowed  # prepaid: no store needed
    with pytest.raises(RateLimiterUnavailable):  # the throttle charges in process instead
        await limiter.reserve("c", 1, STILL)


# Over HTTP: one client, several processes, one bucket in Redis ----------------------------


def _forwarded_ip() -> str:
    return f"198.18.{random.randrange(256)}.{random.randrange(1, 255)}"


async def test_two_apps_sharing_a_bucket_throttle_within_the_bound(
    db: Database, redis: Redis, redis_url: str
) -> None:
    ip = _forwarded_ip()
    env = {
        "REDIS_URL": redis_url,
        "REDIS_TIMEOUT_MS": "1000",
        "TRUSTED_PROXIES": "127.0.0.1",
        "RATE_LIMIT_MAXIMUM": "2000",  # a spare of 40 per process
        "RATE_LIMIT_RESTORE_RATE": "1",
    }
    headers = {"X-Forwarded-For": ip}
    started = time.monotonic()
    admitted, answers = 0, []
    try:
        async with serve(db, **env) as first, serve(db, **env) as second:
            for _ in range(40):  # rounds of concurrent requests, two to each process
                answers = await asyncio.gather(
                    *(app.post(FORTY, headers=headers) for app in (first, second) * 2)
                )
                admitted += sum(40 for a in answers if a.status_code == 200)
                if all(a.status_code == 429 for a in answers):
                    break
    finally:
        await redis.delete(KEY_PREFIX + f"ip:{ip}")

    elapsed = time.monotonic() - started
    assert admitted <= 2000 + 1 * elapsed + 2 * 40  # maximum + refill + processes * spare
    assert admitted >= 2000 - 2 * 40  # at most the spares were left unspent
    for refused in answers:
        assert refused.status_code == 429
        assert refused.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
        assert int(refused.headers["retry-after"]) >= 1


async def test_a_redis_outage_still_throttles_a_leasing_process(db: Database) -> None:
    env = {"RATE_LIMIT_MAXIMUM": "200", "RATE_LIMIT_RESTORE_RATE": "0.01"}  # a spare of 4
    async with serve(db, REDIS_URL="redis://127.0.0.1:1/0", **env) as api:
        statuses = [(await api.post(FORTY)).status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]  # the buckets in process, exactly


@pytest_asyncio.fixture
async def own_redis(tmp_path: Path) -> AsyncIterator[RedisProcess]:
    async with redis_process(tmp_path) as server:
        yield server


async def _script_calls(redis: Redis) -> int:
    stats = await redis.info("commandstats")
    return sum(
        int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in ("evalsha", "eval")
    )


async def test_two_server_processes_charge_without_a_redis_call_per_request(
    db: Database, own_redis: RedisProcess
) -> None:
    """Two real `storefront serve` processes, their own redis-server (so that its
    command counts are theirs alone): 100 requests, then the bucket drained."""
    env = {
        "DATABASE_URL": db.url,
        "REDIS_URL": own_redis.url,
        "REDIS_TIMEOUT_MS": "1000",
        "TRUSTED_PROXIES": "127.0.0.1",
        "RATE_LIMIT_MAXIMUM": "10000",  # a spare of 200 per process
        "RATE_LIMIT_RESTORE_RATE": "0.01",
    }
    admin = Redis.from_url(own_redis.url)
    headers = {"X-Forwarded-For": _forwarded_ip()}
    try:
        with live_server(env) as one, live_server(env) as two:
            async with httpx.AsyncClient(headers=headers, timeout=10) as client:
                before, started = await _script_calls(admin), time.monotonic()
                for i in range(100):
                    url = (one if i % 2 else two).graphql
                    assert (await client.post(url, json={"query": TWO})).status_code == 200
                calls = await _script_calls(admin) - before
                elapsed = time.monotonic() - started
                # 200 of cost: one lease per process, and one more per lease lifetime.
                assert calls <= 2 * (1 + math.ceil(elapsed / 1.0)), (calls, elapsed)

                admitted, refused = 200, []
                while len(refused) < 2:
                    answers = await asyncio.gather(
                        *(client.post(s.graphql, json={"query": FORTY}) for s in (one, two))
                    )
                    admitted += sum(40 for a in answers if a.status_code == 200)
                    refused = [a for a in answers if a.status_code == 429]
                    assert admitted <= 10000 + 2 * 200 + 40, admitted
    finally:
        await admin.aclose()
    assert admitted >= 10000 - 2 * 200
    for answer in refused:
        assert answer.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
        assert int(answer.headers["retry-after"]) >= 1
