"""What the Prometheus metrics cost: server CPU per order-dashboard request, on and off.

Runs the dashboard request in-process through the app's ASGI interface
(PostgreSQL, `medium` scale; `bench.prepare` first), sequentially, in blocks
that take turns (interleaved, the order rotating), and prints the median CPU ms
per request (`time.process_time`) with METRICS_ENABLED=false and true, and the
CPU of one `/metrics` scrape. (`bench.dashboard --server-env METRICS_ENABLED=...`
measures the same through a real server and wrk, with more noise.)

    .venv/bin/python -m bench.metrics [--database-url URL] [--rounds 15] [--block 40]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bench.common import DASHBOARD, DEFAULT_DATABASE_URL, admin_token, in_process_app

MODES = ("off", "on")


async def _block(post: Callable[[], Awaitable[Any]], size: int) -> float:
    started = time.process_time()
    for _ in range(size):
        await post()
    return (time.process_time() - started) * 1000 / size


async def run(
    database_url: str, rounds: int, block: int, n: int
) -> tuple[dict[str, list[float]], float]:
    uncached = {"CACHE_ENABLED": "false"}  # every request runs: the dashboard as measured
    async with (
        in_process_app(database_url, {**uncached, "METRICS_ENABLED": "false"}) as off,
        in_process_app(database_url, {**uncached, "METRICS_ENABLED": "true"}) as on,
    ):
        token = await admin_token(on.app)
        variables = {"n": n}

        def poster(app: Any) -> Callable[[], Awaitable[Any]]:
            return lambda: app.post(DASHBOARD, variables, token)

        posts = {"off": poster(off), "on": poster(on)}
        for mode in MODES:  # warm-up: caches, prepared statements, pool
            await _block(posts[mode], 10)
        figures: dict[str, list[float]] = {mode: [] for mode in MODES}
        for round_number in range(rounds):
            order = MODES if round_number % 2 == 0 else MODES[::-1]
            for mode in order:
                figures[mode].append(await _block(posts[mode], block))
        started = time.process_time()
        for _ in range(50):
            response = await on.client.get("/metrics")
            assert response.status_code == 200
        scrape_ms = (time.process_time() - started) * 1000 / 50
    return figures, scrape_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--block", type=int, default=40, help="requests per block")
    parser.add_argument("--n", type=int, default=50, help="orders per request")
    args = parser.parse_args()
    figures, scrape_ms = asyncio.run(run(args.database_url, args.rounds, args.block, args.n))
    off = statistics.median(figures["off"])
    print(f"{args.rounds} rounds x {args.block} sequential dashboard requests per mode")
    print("metrics  CPU ms/request (median)   vs off")
    for mode in MODES:
        median = statistics.median(figures[mode])
        print(f"{mode:<8} {median:>10.2f}   {median - off:>+14.2f} ({(median / off - 1):+.1%})")
    print(f"one /metrics scrape: {scrape_ms:.2f} ms CPU")


if __name__ == "__main__":
    main()
