"""Rate limiting on cached hits: Redis calls and CPU per request, charged per request vs leased.

Two in-process apps (ASGI, no sockets) over the `medium` seed and one Redis,
the result cache on: "before" sets `RATE_LIMIT_LEASE_SHARE=0`, so every hit is
charged in Redis (and refunded there when it cost less than it requested), as
before leases; "after" leases with the default share. The admin's order
dashboard is stored once, then hit `--hits` times per round in each app, the
apps alternating round after round. Figures: the rate limiter's Redis commands
per hit (counted on its client, `services.redis`; the result cache has a client
of its own) and the median CPU (`time.process_time`) of one whole hit.

The bucket's maximum decides the lease's spare (`--maximum`, default bench's
1e9: a spare of 2e7, so about one lease a second); `--maximum 100000` gives a
spare of 2000, two dashboards (851 each) per lease.

    .venv/bin/python -m bench.prepare          # once: create and seed bench_medium
    .venv/bin/python -m bench.rate_limit_leases --redis-url redis://127.0.0.1:6379/13
        [--database-url URL] [--rounds 20] [--hits 50] [--maximum 1000000000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import time
from typing import Any

from redis.asyncio import Redis

from bench.common import DASHBOARD, DEFAULT_DATABASE_URL, admin_token, in_process_app

ARMS = {"before": "0", "after": "0.02"}


def count_commands(redis: Redis) -> list[str]:
    """The names of the commands `redis` sends from now on."""
    sent: list[str] = []
    execute = redis.execute_command

    async def counted(*args: Any, **options: Any) -> Any:
        sent.append(str(args[0]))
        return await execute(*args, **options)

    redis.execute_command = counted  # type: ignore[method-assign]
    return sent


async def main(database_url: str, redis_url: str, rounds: int, hits: int, maximum: str) -> None:
    body = {"query": DASHBOARD, "variables": {"n": 50}}
    cpu: dict[str, list[float]] = {arm: [] for arm in ARMS}
    async with contextlib.AsyncExitStack() as stack:
        apps, sent, headers = {}, {}, {}
        for arm, share in ARMS.items():
            env = {
                "REDIS_URL": redis_url,
                "REDIS_TIMEOUT_MS": "1000",  # a loaded machine must not open the breaker
                "CACHE_ENABLED": "true",
                "RATE_LIMIT_LEASE_SHARE": share,
                "ADMIN_RATE_LIMIT_MAXIMUM": maximum,
            }
            app = await stack.enter_async_context(in_process_app(database_url, env))
            apps[arm] = app
            token = await admin_token(app.app)
            headers[arm] = {"Authorization": f"Bearer {token}", "Accept-Encoding": "identity"}
            first = await app.client.post("/graphql", json=body, headers=headers[arm])
            assert first.status_code == 200, first.text
            assert app.services.redis is not None, "needs --redis-url"
            sent[arm] = count_commands(app.services.redis)
        for arm in ARMS:
            sent[arm].clear()
        for round_number in range(rounds):
            order = list(ARMS) if round_number % 2 == 0 else list(reversed(ARMS))
            for arm in order:
                for _ in range(hits):
                    start = time.process_time()
                    hit = await apps[arm].client.post("/graphql", json=body, headers=headers[arm])
                    cpu[arm].append(time.process_time() - start)
                    assert hit.headers["x-cache"] == "HIT", hit.headers
        requests = rounds * hits
        cost = hit.json()["extensions"]["cost"]
        print(
            f"dashboard as a cached hit (admin; requested {cost['requestedQueryCost']},"
            f" actual {cost['actualQueryCost']}); bucket maximum {maximum};"
            f" {rounds} rounds x {hits} hits per arm, interleaved"
        )
        print(f"{'arm':>7} {'lease share':>11} {'Redis cmds/hit':>15} {'median CPU µs':>14}")
        medians = {}
        for arm, share in ARMS.items():
            medians[arm] = statistics.median(cpu[arm]) * 1e6
            per_hit = len(sent[arm]) / requests
            print(f"{arm:>7} {share:>11} {per_hit:15.3f} {medians[arm]:14.0f}")
        print(f"CPU after / before: {medians['after'] / medians['before']:.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--hits", type=int, default=50)
    parser.add_argument("--maximum", default="1000000000")
    args = parser.parse_args()
    asyncio.run(main(args.database_url, args.redis_url, args.rounds, args.hits, args.maximum))
