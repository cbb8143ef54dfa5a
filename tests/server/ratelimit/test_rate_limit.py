"""Cost-based rate limiting: the buckets (in process and in Redis) and the 429s over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import random
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from server.ratelimit.buckets import KEY_PREFIX, InMemoryRateLimiter, RedisRateLimiter
from server.ratelimit.protocol import Bucket, BucketPolicy, RateLimiter, RateLimiterUnavailable
from server.settings import Settings, SettingsError
from tests.conftest import Database
from tests.server.apps import serve

SLOW = BucketPolicy(maximum=100, restore_rate=0.001)  # nothing measurable comes back
# Costs exactly 2 (a connection and its totalCount), fully resolved even on an empty table.
TWO = "{ products(first: 0) { totalCount } }"


async def _delete_keys(redis: Any, prefix: str) -> None:
    keys = [key async for key in redis.scan_iter(match=prefix + "*")]
    if keys:
        await redis.delete(*keys)


@pytest_asyncio.fixture(params=["memory", "redis"])
async def limiter(request: pytest.FixtureRequest) -> AsyncIterator[RateLimiter]:
    if request.param == "memory":
        yield InMemoryRateLimiter()
        return
    from redis.asyncio import Redis

    redis = Redis.from_url(request.getfixturevalue("redis_url"))
    prefix = f"sf:test:{uuid.uuid4().hex}:"
    try:
        yield RedisRateLimiter(redis, prefix=prefix, timeout=1.0)
    finally:
        await _delete_keys(redis, prefix)
        await redis.aclose()


# The buckets: one contract, both implementations ---------------------------------------


async def test_reserves_until_the_bucket_is_empty(limiter: RateLimiter) -> None:
    bucket = await limiter.reserve("a", 60, SLOW)
    assert bucket.allowed
    assert bucket.available == pytest.approx(40, abs=0.01)
    assert (await limiter.reserve("a", 40, SLOW)).allowed  # exactly what is left
    refused = await limiter.reserve("a", 1, SLOW)
    assert not refused.allowed
    assert refused.available == pytest.approx(0, abs=0.01)
    assert (await limiter.reserve("b", 100, SLOW)).allowed  # one bucket per client


async def test_a_refused_reservation_takes_nothing(limiter: RateLimiter) -> None:
    await limiter.reserve("a", 90, SLOW)
    assert not (await limiter.reserve("a", 11, SLOW)).allowed
    assert (await limiter.reserve("a", 10, SLOW)).allowed


async def test_settle_refunds_and_charges_within_bounds(limiter: RateLimiter) -> None:
    await limiter.reserve("a", 80, SLOW)
    bucket = await limiter.settle("a", 30, SLOW)  # requested 80, used 50
    assert bucket.available == pytest.approx(50, abs=0.01)
    bucket = await limiter.settle("a", -70, SLOW)  # used 70 more than reserved
    assert bucket.available == pytest.approx(0, abs=0.01)
    bucket = await limiter.settle("a", 500, SLOW)
    assert bucket.available == pytest.approx(100, abs=0.01)


async def test_a_cost_above_the_maximum_takes_a_full_bucket(limiter: RateLimiter) -> None:
    assert (await limiter.reserve("a", 250, SLOW)).allowed
    assert not (await limiter.reserve("a", 1, SLOW)).allowed


async def test_cost_zero_reads_the_bucket(limiter: RateLimiter) -> None:
    await limiter.reserve("a", 30, SLOW)
    bucket = await limiter.reserve("a", 0, SLOW)
    assert bucket.allowed
    assert bucket.available == pytest.approx(70, abs=0.01)


async def test_the_bucket_refills_at_the_restore_rate(limiter: RateLimiter) -> None:
    policy = BucketPolicy(maximum=100, restore_rate=200)
    # The store reads its clock while it runs each call: the refill's interval begins
    # somewhere in the first call and ends somewhere in the second, so it lies within
    # this span (timed from after the first call, a slow answer to it, as on a loaded
    # CI host, made the bucket look fuller than the time allowed).
    started = time.monotonic()
    await limiter.reserve("a", 100, policy)
    await asyncio.sleep(0.1)
    bucket = await limiter.reserve("a", 0, policy)
    elapsed = time.monotonic() - started
    assert 200 * 0.1 <= bucket.available + 1 <= 200 * elapsed + 2
    await asyncio.sleep(0.5)
    assert (await limiter.reserve("a", 0, policy)).available == 100  # never above the maximum


async def test_in_memory_arithmetic_with_a_clock() -> None:
    now = [1000.0]
    limiter = InMemoryRateLimiter(clock=lambda: now[0])
    policy = BucketPolicy(maximum=2000, restore_rate=100)
    bucket = await limiter.reserve("a", 1500, policy)
    assert bucket.available == 500
    refused = await limiter.reserve("a", 851, policy)
    assert not refused.allowed
    assert refused.retry_after(851) == math.ceil((851 - 500) / 100) == 4
    now[0] += 3.5
    assert not (await limiter.reserve("a", 851, policy)).allowed  # 850 available
    now[0] += 0.02
    bucket = await limiter.reserve("a", 851, policy)
    assert bucket.allowed
    assert bucket.available == pytest.approx(1)


def test_retry_after_and_reset() -> None:
    policy = BucketPolicy(maximum=2000, restore_rate=100)
    assert Bucket(False, 500, policy).retry_after(851) == 4
    assert Bucket(False, 850.5, policy).retry_after(851) == 1
    assert Bucket(True, 900, policy).retry_after(851) == 0
    assert Bucket(False, 0, policy).retry_after(5000) == 20  # capped at the maximum
    assert Bucket(True, 1950, policy).reset_after() == 1
    assert Bucket(True, 2000, policy).reset_after() == 0


async def test_in_memory_forgets_full_buckets_first() -> None:
    now = [0.0]
    limiter = InMemoryRateLimiter(clock=lambda: now[0], max_clients=2)
    policy = BucketPolicy(maximum=10, restore_rate=1)
    await limiter.reserve("full-soon", 1, policy)
    await limiter.reserve("drained", 10, policy)
    now[0] = 5.0
    await limiter.reserve("new", 1, policy)  # "full-soon" is full again: forgotten
    assert not (await limiter.reserve("drained", 10, policy)).allowed


# Redis only --------------------------------------------------------------------------


async def test_redis_reservations_are_atomic(redis: Any) -> None:
    prefix = f"sf:test:{uuid.uuid4().hex}:"
    limiters = [RedisRateLimiter(redis, prefix=prefix, timeout=1.0) for _ in range(4)]
    try:
        buckets = await asyncio.gather(*(limiters[i % 4].reserve("a", 10, SLOW) for i in range(40)))
        assert sum(bucket.allowed for bucket in buckets) == 10
    finally:
        await _delete_keys(redis, prefix)


async def test_redis_keys_are_namespaced_and_expire(redis: Any) -> None:
    client = f"ip:test-{uuid.uuid4().hex}"
    limiter = RedisRateLimiter(redis, timeout=1.0)
    try:
        await limiter.reserve(client, 50, BucketPolicy(maximum=100, restore_rate=10))
        key = KEY_PREFIX + client
        assert key.startswith("sf:v1:ratelimit:")
        assert 5 <= await redis.ttl(key) <= 6  # refilled after 50 / 10 s: then it may go
    finally:
        await redis.delete(KEY_PREFIX + client)


async def test_a_redis_outage_charges_buckets_in_process(db: Database) -> None:
    env = {"RATE_LIMIT_MAXIMUM": "4", "RATE_LIMIT_RESTORE_RATE": "0.01"}
    async with serve(db, REDIS_URL="redis://127.0.0.1:1/0", **env) as api:
        first, second, third = [await api.post(TWO) for _ in range(3)]

        assert first.status_code == second.status_code == 200
        assert first.json()["data"] == {"products": {"totalCount": 0}}
        assert first.json()["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] == 2
        assert second.headers["ratelimit-remaining"] == "0"
        assert third.status_code == 429  # still limited, by this process alone
        assert third.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"


async def test_a_bill_settles_where_it_was_reserved() -> None:
    """A refund for a reservation made in the fallback goes back to the fallback, even
    once the shared store answers again (and the other way round)."""
    from resolvers.viewer import ANONYMOUS
    from server.ratelimit.throttle import Throttle

    class Flaky(InMemoryRateLimiter):
        down = True

        async def reserve(self, client: str, cost: float, policy: BucketPolicy) -> Bucket:
            if self.down:
                raise RateLimiterUnavailable("down")
            return await super().reserve(client, cost, policy)

    shared, fallback = Flaky(), InMemoryRateLimiter()
    throttle = Throttle(limiter=shared, policy=SLOW, admin_policy=SLOW, fallback=fallback)
    bill = await throttle.reserve(client="c", viewer=ANONYMOUS, requested=30)
    assert bill.limiter is fallback
    shared.down = False
    bill.settle(10)
    await bill.refund()

    assert (await fallback.reserve("c", 0, SLOW)).available == pytest.approx(90, abs=0.01)
    assert (await shared.reserve("c", 0, SLOW)).available == pytest.approx(100, abs=0.01)


# Over HTTP ---------------------------------------------------------------------------


async def test_429_at_the_boundary_with_retry_after(db: Database) -> None:
    async with serve(db, RATE_LIMIT_MAXIMUM="10", RATE_LIMIT_RESTORE_RATE="0.01") as api:
        for spent in range(2, 11, 2):
            response = await api.post(TWO)
            assert response.status_code == 200
            assert response.headers["ratelimit-remaining"] == str(10 - spent)
        api.statements.clear()
        response = await api.post(TWO, headers={"Accept": "application/graphql-response+json"})
        assert response.status_code == 429
        assert api.statements == []  # nothing ran
        body = response.json()
        assert "data" not in body
        assert body["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
        assert response.headers["retry-after"] == "200"  # 2 missing at 0.01 per second
        assert response.headers["ratelimit-limit"] == "10"
        assert response.headers["ratelimit-remaining"] == "0"
        assert response.headers["ratelimit-reset"] == "1000"
        assert body["extensions"]["cost"]["requestedQueryCost"] == 2
        assert body["extensions"]["cost"]["actualQueryCost"] == 0


async def test_a_signed_in_client_is_charged_by_user(db: Database) -> None:
    async with serve(db, RATE_LIMIT_MAXIMUM="4", RATE_LIMIT_RESTORE_RATE="0.01") as api:
        token = await api.token("ann@example.com")
        other = await api.token("ann@example.com")  # the same user, another token
        assert (await api.post(TWO, token=token)).status_code == 200
        assert (await api.post(TWO, token=other)).status_code == 200
        api.statements.clear()
        assert (await api.post(TWO, token=token)).status_code == 429
        assert api.statements == []  # the token is cached; nothing of the query ran
        assert (await api.post(TWO)).status_code == 200  # anonymous: by IP, its own bucket


async def test_the_bucket_refills_at_the_configured_rate(db: Database) -> None:
    cost_ten = "{ " + " ".join(f"p{i}: products(first: 0) {{ totalCount }}" for i in range(5))
    # Refilled in 2.5 s: on a loaded CI host one SQLite request once took the 0.5 s
    # a faster rate left between the two, and the second found the bucket full again.
    async with serve(db, RATE_LIMIT_MAXIMUM="10", RATE_LIMIT_RESTORE_RATE="4") as api:
        assert (await api.post(cost_ten + " }")).status_code == 200
        refused = await api.post(cost_ten + " }")
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "3"  # ceil(10 / 4)
        await asyncio.sleep(2.6)
        assert (await api.post(cost_ten + " }")).status_code == 200


async def test_unused_cost_is_refunded(db: Database) -> None:
    query = "{ products(first: 100) { nodes { id } } }"  # requests 101; resolves 1
    async with serve(db, RATE_LIMIT_MAXIMUM="150", RATE_LIMIT_RESTORE_RATE="0.01") as api:
        for _ in range(5):
            response = await api.post(query)
            assert response.status_code == 200
            assert response.json()["extensions"]["cost"]["actualQueryCost"] == 1
        assert response.headers["ratelimit-remaining"] == "145"


async def test_rate_limiting_can_be_turned_off(db: Database) -> None:
    async with serve(db, RATE_LIMIT_ENABLED="false", RATE_LIMIT_MAXIMUM="1") as api:
        for _ in range(3):
            response = await api.post(TWO)
            assert response.status_code == 200
            assert response.json()["extensions"]["cost"] == {
                "requestedQueryCost": 2,
                "actualQueryCost": 2,
            }


# One bucket across processes -----------------------------------------------------------


def _forwarded_ip() -> str:
    """A random address of the benchmarking range, so runs never share a bucket."""
    return f"198.18.{random.randrange(256)}.{random.randrange(1, 255)}"


async def test_two_apps_sharing_redis_drain_one_bucket(db: Database, redis_url: str) -> None:
    ip = _forwarded_ip()
    env = {
        "REDIS_URL": redis_url,
        "REDIS_TIMEOUT_MS": "1000",
        "TRUSTED_PROXIES": "127.0.0.1",
        "RATE_LIMIT_MAXIMUM": "10",
        "RATE_LIMIT_RESTORE_RATE": "0.01",
    }
    headers = {"X-Forwarded-For": ip}
    async with serve(db, **env) as first, serve(db, **env) as second:
        try:
            statuses = [
                (await (first if i % 2 else second).post(TWO, headers=headers)).status_code
                for i in range(6)
            ]
            assert statuses == [200] * 5 + [429]
            assert (await first.post(TWO, headers=headers)).status_code == 429
        finally:
            await first.services.redis.delete(KEY_PREFIX + f"ip:{ip}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _servers(count: int, env: dict[str, str]) -> Iterator[list[str]]:
    """`count` `storefront serve` processes (started together), their base URLs."""
    ports = [_free_port() for _ in range(count)]
    processes = [
        subprocess.Popen(
            [str(Path(sys.executable).parent / "storefront"), "serve", "--port", str(port)],
            env={**os.environ, "LOG_LEVEL": "warning", "SHUTDOWN_GRACE_SECONDS": "0", **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for port in ports
    ]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        deadline = time.monotonic() + 60  # a loaded 2-core machine starts slowly
        for process, url in zip(processes, urls, strict=True):
            while True:
                assert process.poll() is None, "a server exited"
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(url + "/health", timeout=1).status_code == 200:
                        break
                assert time.monotonic() < deadline, "a server did not start"
                time.sleep(0.1)
        yield urls
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=10)


async def test_two_server_processes_sharing_redis_drain_one_bucket(
    db: Database, redis: Any, redis_url: str
) -> None:
    ip = _forwarded_ip()
    env = {
        "DATABASE_URL": db.url,
        "DB_POOLER": db.pooler,
        "REDIS_URL": redis_url,
        "REDIS_TIMEOUT_MS": "1000",
        "TRUSTED_PROXIES": "127.0.0.1",
        "RATE_LIMIT_MAXIMUM": "10",
        "RATE_LIMIT_RESTORE_RATE": "0.01",
    }
    try:
        with _servers(2, env) as (one, two):
            async with httpx.AsyncClient(headers={"X-Forwarded-For": ip}) as client:
                statuses = []
                for i in range(6):
                    url = (one if i % 2 else two) + "/graphql"
                    statuses.append((await client.post(url, json={"query": TWO})).status_code)
                assert statuses == [200] * 5 + [429]
                refused = await client.post(one + "/graphql", json={"query": TWO})
                assert refused.status_code == 429
                assert refused.headers["retry-after"] == "200"
    finally:
        await redis.delete(KEY_PREFIX + f"ip:{ip}")


# Settings ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "env",
    [
        {"RATE_LIMIT_MAXIMUM": "0"},
        {"RATE_LIMIT_RESTORE_RATE": "-1"},
        {"ADMIN_RATE_LIMIT_RESTORE_RATE": "fast"},
        {"TRUSTED_PROXIES": "10.0.0.0/8, nonsense"},
        {"MAX_QUERY_COST": "0"},
        {"REDIS_TIMEOUT_MS": "0"},
        {"APQ_MAX_DOCUMENT_BYTES": "0"},
        {"APQ_REGISTRATIONS_PER_CLIENT": "-1"},
        {"APQ_REGISTRATION_WINDOW_SECONDS": "0"},
    ],
)
def test_bad_settings_are_refused(env: dict[str, str]) -> None:
    with pytest.raises(SettingsError):
        Settings.from_env(env)


def test_redis_bounds_default_to_50_ms_and_the_cache_follows_redis_timeout_ms() -> None:
    defaults = Settings.from_env({})
    assert (defaults.redis_timeout_ms, defaults.cache_redis_timeout_ms) == (50, 50)
    raised = Settings.from_env({"REDIS_TIMEOUT_MS": "80"})
    assert (raised.redis_timeout_ms, raised.cache_redis_timeout_ms) == (80, 80)
    own = Settings.from_env({"REDIS_TIMEOUT_MS": "80", "CACHE_REDIS_TIMEOUT_MS": "20"})
    assert own.cache_redis_timeout_ms == 20


def test_introspection_defaults_by_environment() -> None:
    assert Settings.from_env({}).introspection
    assert not Settings.from_env({"ENVIRONMENT": "production"}).introspection
    assert Settings.from_env({"ENVIRONMENT": "production", "INTROSPECTION": "1"}).introspection


async def test_a_bill_refunds_after_the_answer_and_charges_overruns() -> None:
    from resolvers.viewer import ANONYMOUS
    from server.ratelimit.throttle import Throttle

    limiter = InMemoryRateLimiter()
    throttle = Throttle(limiter=limiter, policy=SLOW, admin_policy=SLOW)
    bill = await throttle.reserve(client="c", viewer=ANONYMOUS, requested=30)
    bill.settle(10)
    assert bill.cost() == {
        "requestedQueryCost": 30,
        "actualQueryCost": 10,
        "throttleStatus": {"maximumAvailable": 100, "currentlyAvailable": 90, "restoreRate": 0.001},
    }
    assert (await limiter.reserve("c", 0, SLOW)).available == pytest.approx(70, abs=0.01)
    await bill.refund()  # what the view runs once the answer is sent
    assert (await limiter.reserve("c", 0, SLOW)).available == pytest.approx(90, abs=0.01)
    overrun = await throttle.reserve(client="c", viewer=ANONYMOUS, requested=10)
    overrun.settle(25)
    await overrun.refund()
    assert (await limiter.reserve("c", 0, SLOW)).available == pytest.approx(65, abs=0.01)
    dry = await throttle.peek(client="c", viewer=ANONYMOUS, requested=50)
    dry.settle(0)
    await dry.refund()
    assert (await limiter.reserve("c", 0, SLOW)).available == pytest.approx(65, abs=0.01)


async def test_a_failing_sibling_field_does_not_make_a_query_free(db: Database) -> None:
    async with serve(db, RATE_LIMIT_MAXIMUM="1000", RATE_LIMIT_RESTORE_RATE="0.01") as api:
        query = (
            '{ a: products(first: 50) { totalCount } b: products(after: "garbage") { totalCount } }'
        )
        body = (await api.post(query)).json()
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        cost = body["extensions"]["cost"]
        assert cost["actualQueryCost"] == cost["requestedQueryCost"] > 0
        assert cost["throttleStatus"]["currentlyAvailable"] < 1000
