"""A real `storefront serve` under load while its Redis is frozen (SIGSTOP), then thawed.

Rate limiting, persisted queries and the result cache all use the frozen Redis. Each
call waits at most the bound (REDIS_TIMEOUT_MS, 50 ms) until its store's breaker
opens, then none at all; the limiter charges buckets in process meanwhile, and hash
lookups that need Redis answer 503 PERSISTED_QUERY_STORE_UNAVAILABLE. Before the
guard, a frozen Redis added its 2 s socket timeout to every request.

Timings are loose on purpose (a noisy 2-core machine): the test counts slow
requests, it does not time fast ones.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from server.persisted.protocol import sha256_hex
from server.ratelimit.buckets import KEY_PREFIX
from tests.cache_support import RedisProcess, redis_process
from tests.conftest import Database
from tests.live_server import live_server
from tests.transport_support import codes, hash_only, register

TWO = "{ products(first: 0) { totalCount } }"  # costs 2
KNOWN = "query Known { products(first: 0) { totalCount } }"
WORKERS = 4
SLOW = 0.15  # seconds: the bound (50 ms) with generous slack
OVERSPENDER = "203.0.113.66"


@dataclass(frozen=True)
class Sample:
    phase: str
    kind: str
    status: int
    codes: tuple[str, ...]
    started_at: float
    elapsed: float


@pytest.fixture
async def own_redis(tmp_path: Path) -> AsyncIterator[RedisProcess]:
    async with redis_process(tmp_path) as server:
        yield server


_addresses = (f"198.18.{i // 250}.{i % 250 + 1}" for i in itertools.count())


async def _worker(
    client: httpx.AsyncClient, phase: Callable[[], str], samples: list[Sample]
) -> None:
    """Sends requests until cancelled: each from a fresh address (so load is never
    rate-limited), mostly plain queries, some hash-only lookups of unknown documents."""
    for n in itertools.count():
        kind = "lookup" if n % 5 == 0 else "query"
        body = hash_only(f"query U{secrets.token_hex(8)} {{ __typename }}")
        if kind == "query":
            body = {"query": TWO} if n % 2 else hash_only(KNOWN)  # KNOWN: known in process
        started, current = time.perf_counter(), phase()
        response = await client.post(
            "/graphql", json=body, headers={"X-Forwarded-For": next(_addresses)}
        )
        elapsed = time.perf_counter() - started
        found = tuple(codes(response.json()))
        samples.append(Sample(current, kind, response.status_code, found, started, elapsed))


async def _spend(client: httpx.AsyncClient, times: int) -> list[int]:
    """The overspender's statuses for `times` plain queries in a row."""
    headers = {"X-Forwarded-For": OVERSPENDER}
    return [
        (await client.post("/graphql", json={"query": TWO}, headers=headers)).status_code
        for _ in range(times)
    ]


async def _until(check: Callable[[], Awaitable[bool]], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, f"not within {seconds} s: {what}"
        await asyncio.sleep(0.05)


async def _stop(workers: list[asyncio.Task[None]]) -> None:
    for worker in workers:
        worker.cancel()
    await asyncio.gather(*workers, return_exceptions=True)


async def _counted(samples: list[Sample], count: int) -> bool:
    return len(samples) >= count


async def test_a_frozen_redis_costs_a_few_requests_the_bound_and_then_nothing(
    db: Database, own_redis: RedisProcess
) -> None:
    env = {
        "DATABASE_URL": db.url,
        "REDIS_URL": own_redis.url,
        "REDIS_TIMEOUT_MS": "50",
        "CACHE_ENABLED": "true",
        "TRUSTED_PROXIES": "127.0.0.1",
        "RATE_LIMIT_MAXIMUM": "20",
        "RATE_LIMIT_RESTORE_RATE": "0.01",
    }
    admin = Redis.from_url(own_redis.url)
    samples: list[Sample] = []
    phase = "before"
    with live_server(env) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            assert (await client.post("/graphql", json=register(KNOWN))).status_code == 200
            assert await _spend(client, 5) == [200] * 5  # 10 of its 20, in Redis
            workers = [
                asyncio.create_task(_worker(client, lambda: phase, samples)) for _ in range(WORKERS)
            ]
            try:
                async with asyncio.timeout(25):
                    await _until(lambda: _counted(samples, 60), 10, "load before")
                    phase, frozen_at = "frozen", time.perf_counter()
                    own_redis.pause()
                    try:
                        # Long enough for the breakers to probe (1 s) twice.
                        await asyncio.sleep(2.5)
                        frozen_spend = await _spend(client, 14)
                    finally:
                        own_redis.resume()
                    phase = "after"
                    resumed = len(samples)
                    await _until(lambda: _counted(samples, resumed + 40), 10, "load after")
                    # Without the load: a late answer on a busy loop must not pass for Redis's.
                    await _stop(workers)
                    left = float(
                        (await admin.hget(KEY_PREFIX + f"ip:{OVERSPENDER}", "available")) or 0
                    )

                    async def limiter_uses_redis() -> bool:
                        address = next(_addresses)
                        headers = {"X-Forwarded-For": address}
                        await client.post("/graphql", json={"query": TWO}, headers=headers)
                        return bool(await admin.exists(KEY_PREFIX + f"ip:{address}"))

                    await _until(limiter_uses_redis, 10, "the limiter back on Redis")
                    after_spend = await _spend(client, 8)
                    spent = left - float(
                        (await admin.hget(KEY_PREFIX + f"ip:{OVERSPENDER}", "available")) or 0
                    )
                    fresh = "query Fresh { products(first: 0) { totalCount } }"

                    async def registers_in_redis() -> bool:
                        headers = {"X-Forwarded-For": next(_addresses)}
                        await client.post("/graphql", json=register(fresh), headers=headers)
                        return bool(await admin.exists(f"sf:v1:pq:apq:{sha256_hex(fresh)}"))

                    await _until(registers_in_redis, 10, "registrations back in Redis")
            finally:
                await _stop(workers)
                await admin.aclose()
        log = server.output()

    frozen = [s for s in samples if s.phase == "frozen"]
    before = [s for s in samples if s.phase == "before"]
    report = _report(samples, frozen_at)
    print(report)
    # Every answer is a 200, but for hash lookups Redis had to answer: those may be 503.
    for sample in samples:
        if sample.status == 503:
            assert sample.kind == "lookup", report
            assert sample.codes == ("PERSISTED_QUERY_STORE_UNAVAILABLE",), report
        else:
            assert sample.status == 200, (sample, report)
    assert any(s.status == 503 for s in frozen), report
    # A handful of requests paid the bound (per store, until its breaker opened, and one
    # probe a second); none paid anything like the old 2 s.
    assert max(s.elapsed for s in samples) < 1.0, report
    slow_before = sum(s.elapsed > SLOW for s in before) / len(before)
    slow_frozen = sum(s.elapsed > SLOW for s in frozen)
    assert slow_frozen <= 15 + slow_before * len(frozen), report
    # The overspender is still refused while Redis is frozen (buckets in process)...
    assert frozen_spend[:8] == [200] * 8, frozen_spend
    assert 429 in frozen_spend, frozen_spend
    # ...and back on its Redis bucket once Redis answers (the one in process is empty).
    # Its bucket in process is empty, so every 200 was paid in Redis, and Redis
    # refused once its bucket was spent. Not `count(200) == left // 2`: on a loaded
    # machine one call may still miss the 50 ms bound and be refused in process
    # (seen in CI: [200, 429, 200, 200, 200, 429, ...]), though Redis may have
    # charged it; the bucket in Redis is the judge of what was paid.
    facts = (after_spend, left, spent)
    assert left >= 2, facts
    assert after_spend[0] == 200, facts
    assert after_spend[-1] == 429, facts
    assert 2 * after_spend.count(200) <= spent + 0.3, facts  # + its refill: 0.01/s, < 30 s
    assert left - spent < 2, facts  # what is left cannot pay one more
    for store in ("rate limiting", "persisted queries", "result cache"):
        assert log.count(f"{store}: Redis unavailable") == 1, log  # once a minute at most


def _report(samples: list[Sample], frozen_at: float) -> str:
    """Latency per phase, and when (since the freeze) the slow frozen requests began."""
    lines = []
    for phase in ("before", "frozen", "after"):
        chosen = sorted(s.elapsed for s in samples if s.phase == phase)
        if chosen:
            lines.append(
                f"{phase}: {len(chosen)} requests, median {chosen[len(chosen) // 2] * 1000:.0f} ms,"
                f" max {chosen[-1] * 1000:.0f} ms, over {SLOW * 1000:.0f} ms:"
                f" {sum(e > SLOW for e in chosen)}"
            )
    slow = [
        f"{(s.started_at - frozen_at) * 1000:.0f}+{s.elapsed * 1000:.0f}"
        for s in samples
        if s.phase == "frozen" and s.elapsed > SLOW
    ]
    lines.append("slow while frozen (ms since the freeze + ms taken): " + ", ".join(slow))
    return "\n".join(lines)
