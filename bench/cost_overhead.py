"""What cost analysis (and cost-based rate limiting) adds to the uncached order dashboard.

The admin's order dashboard (`orders(first: 50)` with customer, items, product,
rating and category; no result cache exists, so every request executes) is sent
in process through ASGI, alternating between arms in rounds so that drift
(autovacuum, CPU frequency, caches) falls on every arm alike:

    baseline        no cost analysis, no rate limiting (the request path before it)
    cost            cost priced before execution, counted after it, in `extensions.cost`
    cost+memory     and charged to an in-process bucket (reserve, then refund)
    cost+redis      and charged to a Redis bucket (with --redis-url)

It then times the cost analysis alone: pricing the warm plan with the variables,
counting the actual cost on a real response, and compiling a plan (once per document).
In process, httpx waits for the app's background tasks before it returns a response,
so the rate-limit arms also pay the refund, which a real server sends after answering.
CPU ms/req is this process's CPU time (app and client; PostgreSQL's is not in it): less
sensitive than latency to whatever else the machine runs.

    .venv/bin/python -m bench.prepare          # once: create and seed bench_medium
    .venv/bin/python -m bench.cost_overhead [--database-url URL] [--redis-url URL]
        [--rounds 20] [--per-round 25] [--n 50]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from redis.asyncio import Redis

from bench.common import DASHBOARD, DEFAULT_DATABASE_URL, admin_token, in_process_app
from schema.cost import CostAnalysis, Price
from server.ratelimit.buckets import InMemoryRateLimiter, RedisRateLimiter
from server.ratelimit.protocol import BucketPolicy
from server.ratelimit.throttle import Throttle

TARGET_OVERHEAD = 0.05
UNLIMITED = BucketPolicy(maximum=10**9, restore_rate=10**9)


class _FreePlan:
    def requested(self, variables: Mapping[str, Any]) -> int:
        return 0

    def actual(self, data: Any) -> int:
        return 0


class _NoCostAnalysis:
    """Stands in for CostAnalysis in the baseline: prices nothing."""

    def price(self, document: Any, operation: Any, variables: Any) -> Price:
        return Price(_FreePlan(), 0)  # type: ignore[arg-type]


@dataclass
class Arm:
    name: str
    cost_analysis: Any
    throttle: Throttle
    latencies: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # this process's CPU time per request

    def median_ms(self) -> float:
        return statistics.median(self.latencies) * 1000

    def p95_ms(self) -> float:
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[94] * 1000

    def mean_ms(self) -> float:
        return statistics.fmean(self.latencies) * 1000

    def cpu_ms(self) -> float:
        return statistics.fmean(self.cpu) * 1000


def _throttle(limiter: Any) -> Throttle:
    return Throttle(limiter=limiter, policy=UNLIMITED, admin_policy=UNLIMITED)


def _per_call_us(function: Any, iterations: int) -> float:
    started = time.perf_counter()
    for _ in range(iterations):
        function()
    return (time.perf_counter() - started) / iterations * 1e6


async def run(args: argparse.Namespace) -> None:
    redis = Redis.from_url(args.redis_url) if args.redis_url else None
    async with in_process_app(args.database_url) as api:
        services = api.services
        token = await admin_token(api.app)
        headers = {"Authorization": f"Bearer {token}"}
        body = {"query": DASHBOARD, "variables": {"n": args.n}}
        arms = [
            Arm("baseline", _NoCostAnalysis(), _throttle(None)),
            Arm("cost", services.cost_analysis, _throttle(None)),
            Arm("cost+memory", services.cost_analysis, _throttle(InMemoryRateLimiter())),
        ]
        if redis is not None:
            prefix = f"sf:bench:{time.time_ns()}:"
            limiter = RedisRateLimiter(redis, prefix=prefix)
            arms.append(Arm("cost+redis", services.cost_analysis, _throttle(limiter)))

        async def send(arm: Arm) -> dict[str, Any]:
            api.app.state.services = replace(
                services, cost_analysis=arm.cost_analysis, throttle=arm.throttle
            )
            started, cpu_started = time.perf_counter(), time.process_time()
            response = await api.client.post("/graphql", json=body, headers=headers)
            arm.latencies.append(time.perf_counter() - started)
            arm.cpu.append(time.process_time() - cpu_started)
            payload: dict[str, Any] = response.json()
            if response.status_code != 200 or payload.get("errors"):
                raise RuntimeError(f"{response.status_code}: {str(payload)[:500]}")
            return payload

        for arm in arms:  # warm: prepared statements, compiled caches, the plan
            for _ in range(5):
                payload = await send(arm)
            arm.latencies.clear()
            arm.cpu.clear()
        for _ in range(args.rounds):
            for arm in arms:
                for _ in range(args.per_round):
                    payload = await send(arm)
        cost = payload["extensions"]["cost"]

        # The cost analysis alone, on the same document, variables and response.
        executor = services.executor
        document = executor.parse(DASHBOARD)
        executor.validate(document)
        operation = document.operation(None)
        variables = executor.check_variables(operation, body["variables"])
        analysis: CostAnalysis = arms[1].cost_analysis
        plan = analysis.plan(document, operation)
        price_us = _per_call_us(lambda: analysis.price(document, operation, variables), 20_000)
        actual_us = _per_call_us(lambda: plan.actual(payload["data"]), 2_000)
        schema = executor.schema
        compile_us = _per_call_us(lambda: CostAnalysis(schema).plan(document, operation), 500)
        charge_us = {arm.name: await _charge_us(arm.throttle, cost) for arm in arms[2:]}
        if redis is not None:
            keys = [key async for key in redis.scan_iter(match=prefix + "*")]
            if keys:
                await redis.delete(*keys)
            await redis.aclose()

    report(args, arms, cost, price_us, actual_us, compile_us, charge_us)


async def _charge_us(throttle: Throttle, cost: dict[str, Any]) -> float:
    """Wall time of one reservation and its refund, as the view makes them."""
    from resolvers.viewer import ANONYMOUS

    async def charge() -> None:
        bill = await throttle.reserve(
            client="ip:bench", viewer=ANONYMOUS, requested=cost["requestedQueryCost"]
        )
        bill.settle(cost["actualQueryCost"])
        await bill.refund()

    for _ in range(50):
        await charge()
    started = time.perf_counter()
    for _ in range(1000):
        await charge()
    return (time.perf_counter() - started) / 1000 * 1e6


def report(
    args: argparse.Namespace,
    arms: list[Arm],
    cost: dict[str, Any],
    price_us: float,
    actual_us: float,
    compile_us: float,
    charge_us: dict[str, float],
) -> None:
    baseline = arms[0].median_ms()
    requests = args.rounds * args.per_round
    print(
        f"order dashboard (orders(first: {args.n}), admin), in process through ASGI; "
        f"{requests} requests per arm in {args.rounds} interleaved rounds"
    )
    print(f"requested cost {cost['requestedQueryCost']}, actual cost {cost['actualQueryCost']}\n")
    header = (
        f"{'arm':<12} {'median ms':>9} {'p95 ms':>8} {'mean ms':>8} {'vs baseline':>12} "
        f"{'CPU ms/req':>10} {'vs baseline':>12}"
    )
    print(header)
    print("-" * len(header))
    for arm in arms:
        change = (arm.median_ms() / baseline - 1) * 100
        cpu_change = (arm.cpu_ms() / arms[0].cpu_ms() - 1) * 100
        delta = "" if arm is arms[0] else f"{change:+.1f}%"
        cpu_delta = "" if arm is arms[0] else f"{cpu_change:+.1f}%"
        print(
            f"{arm.name:<12} {arm.median_ms():>9.2f} {arm.p95_ms():>8.2f} "
            f"{arm.mean_ms():>8.2f} {delta:>12} {arm.cpu_ms():>10.2f} {cpu_delta:>12}"
        )
    direct = price_us + actual_us
    share = direct / 1000 / baseline
    print(
        f"\ncost analysis alone, per request: price {price_us:.1f} us + actual "
        f"{actual_us:.1f} us = {direct:.1f} us ({share * 100:.2f}% of the baseline median)"
    )
    print(f"plan compile (once per document, then cached by its hash): {compile_us:.0f} us")
    for name, us in charge_us.items():
        print(f"rate limit alone ({name}): reserve + refund = {us:.0f} us")
    end_to_end = arms[1].median_ms() / baseline - 1
    verdict = "PASS" if max(end_to_end, share) < TARGET_OVERHEAD else "FAIL"
    print(
        f"\ntarget: cost analysis adds < {TARGET_OVERHEAD:.0%} to the dashboard's latency: "
        f"{end_to_end * 100:+.1f}% end to end, {share * 100:.2f}% measured directly  {verdict}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--redis-url", default=None, help="also measure the Redis bucket")
    parser.add_argument("--n", type=int, default=50, help="orders per request")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--per-round", type=int, default=25, help="requests per arm and round")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
