"""CPU per cached hit over Redis: every hit read from Redis (before) vs from the near cache (after).

In process (ASGI, no sockets to the client) over the `medium` seed, with REDIS_URL
set: the order dashboard of an admin (50 newest orders, private, ~27 KB) and one
product page (anonymous, public, small) are stored, then hit with
`Accept-Encoding: zstd` and `identity`. "before" points the response cache at the
Redis store itself (one MGET and a header parse per hit, as without the near cache);
"after" at the near store in front of it (no round trip, nothing parsed). The two
alternate round after round; figures are medians over all rounds of the CPU time
(`time.process_time`) of one whole request, and the Redis reads counted per hit.

    .venv/bin/python -m bench.prepare          # once: create and seed bench_medium
    .venv/bin/python -m bench.near_hits --redis-url redis://127.0.0.1:6379/13
        [--database-url URL] [--rounds 20] [--hits 30]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
from collections.abc import Sequence
from typing import Any

from bench.coded_hits import request_cpu
from bench.common import DASHBOARD, DEFAULT_DATABASE_URL, admin_token, in_process_app
from server.cache.store_near import NearCacheStore
from server.cache.store_redis import Stored

PRODUCT = "{ products(first: 1) { nodes { id name priceCents averageRating } } }"
CODINGS = ("zstd", "identity")


async def main(database_url: str, redis_url: str, rounds: int, hits: int) -> None:
    # A generous bound: a loaded machine must not turn hits into BYPASS.
    env = {"CACHE_ENABLED": "true", "REDIS_URL": redis_url, "CACHE_REDIS_TIMEOUT_MS": "1000"}
    async with in_process_app(database_url, env) as app:
        caches = app.services.caches
        assert caches is not None
        near = caches.store
        assert isinstance(near, NearCacheStore), "the near cache is off (CACHE_NEAR_BYTES=0)"
        for _ in range(500):  # until subscribed
            if near.usable:
                break
            await asyncio.sleep(0.01)
        reads = 0
        real_read = near.inner.read

        async def counted(keys: Sequence[str]) -> list[Stored | None]:
            nonlocal reads
            reads += 1
            return await real_read(keys)

        near.inner.read = counted  # type: ignore[method-assign]
        token = await admin_token(app.app)
        queries: dict[str, tuple[dict[str, Any], dict[str, str]]] = {
            "dashboard": (
                {"query": DASHBOARD, "variables": {"n": 50}},
                {"Authorization": f"Bearer {token}"},
            ),
            "product": ({"query": PRODUCT}, {}),
        }
        cpu: dict[tuple[str, str, str], list[float]] = {}
        reads_per_hit: dict[str, list[float]] = {"before": [], "after": []}
        for round_number in range(rounds):
            for mode in ("before", "after") if round_number % 2 == 0 else ("after", "before"):
                caches.responses.store = near.inner if mode == "before" else near
                for name, (body, headers) in queries.items():
                    # Stored anew each round (and kept near, for "after").
                    await request_cpu(app.client, body, headers | {"Cache-Control": "no-cache"})
                    reads_before = reads
                    for _ in range(hits):
                        for coding in CODINGS:
                            spent, hit = await request_cpu(
                                app.client, body, headers | {"Accept-Encoding": coding}
                            )
                            assert hit.headers["x-cache"] == "HIT", hit.headers
                            cpu.setdefault((mode, name, coding), []).append(spent)
                    reads_per_hit[mode].append((reads - reads_before) / (hits * len(CODINGS)))
        caches.responses.store = near
        print(
            f"{rounds} rounds x {hits} hits per query and coding, interleaved; "
            "median CPU per request (µs)"
        )
        print(f"{'query':>10} {'coding':>9} {'before':>7} {'after':>6} {'ratio':>6}")
        for name in queries:
            for coding in CODINGS:
                before = statistics.median(cpu[("before", name, coding)]) * 1e6
                after = statistics.median(cpu[("after", name, coding)]) * 1e6
                print(f"{name:>10} {coding:>9} {before:7.0f} {after:6.0f} {after / before:6.2f}")
        print(
            "Redis reads per hit: before "
            f"{statistics.mean(reads_per_hit['before']):.2f}, "
            f"after {statistics.mean(reads_per_hit['after']):.2f}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--hits", type=int, default=30)
    args = parser.parse_args()
    asyncio.run(main(args.database_url, args.redis_url, args.rounds, args.hits))
