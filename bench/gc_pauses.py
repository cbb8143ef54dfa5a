"""Collector pauses per request under each GC setting: what GC_THRESHOLDS is chosen from.

In process over the `medium` seed (result cache on), the order dashboard of an admin
(50 newest orders) is sent through the app's ASGI interface by `--concurrency` tasks at
once: `--uncached` requests executed afresh (`Cache-Control: no-cache`), then `--hits`
cached hits. `gc.callbacks` time every collection in CPU time of the thread
(`time.thread_time`, so other processes on a shared machine do not count): printed per
setting are the collections of each generation per 1,000 requests, the collector's CPU
per request, and its longest pause. The settings alternate, `--rounds` times, and the
figures are medians over the rounds.

    .venv/bin/python -m bench.prepare          # once: create and seed bench_medium
    .venv/bin/python -m bench.gc_pauses [--database-url URL] [--rounds 3]
        [--uncached 160] [--hits 3000] [--concurrency 16]
        [--settings off,700,10,10;10000,10,10;50000,20,100]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import orjson

from bench.common import DASHBOARD, DEFAULT_DATABASE_URL, admin_token, in_process_app
from bench.gc_cycles import FRESH, JSON, post

DEFAULT_SETTINGS = "off;700,10,10;10000,10,10;50000,20,100;200000,20,100"


@dataclass
class Pauses:
    """Collections by generation and the CPU seconds each took."""

    started: dict[int, float] = field(default_factory=dict)
    seconds: dict[int, list[float]] = field(default_factory=lambda: defaultdict(list))

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        generation = info["generation"]
        if phase == "start":
            self.started[generation] = time.thread_time()
        else:
            self.seconds[generation].append(time.thread_time() - self.started[generation])


async def load(
    app: Any, body: bytes, headers: list[Any], *, requests: int, concurrency: int
) -> Pauses:
    remaining = requests

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await post(app, body, headers)

    pauses = Pauses()
    gc.callbacks.append(pauses)
    try:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    finally:
        gc.callbacks.remove(pauses)
    return pauses


def env_of(setting: str) -> dict[str, str]:
    if setting == "off":
        return {"GC_TUNING": "false"}
    return {"GC_TUNING": "true", "GC_THRESHOLDS": setting}


async def measure(database_url: str, setting: str, args: argparse.Namespace) -> dict[str, Pauses]:
    # SLOW_OPERATION_MS: 16 concurrent dashboards in one process are slow by design.
    env = {"CACHE_ENABLED": "true", "SLOW_OPERATION_MS": "1000000", **env_of(setting)}
    async with in_process_app(database_url, env) as api:
        token = await admin_token(api.app)
        body = orjson.dumps({"query": DASHBOARD, "variables": {"n": 50}})
        admin = (b"authorization", f"Bearer {token}".encode())
        for _ in range(3):  # warm: caches, prepared statements, a stored entry
            await post(api.app, body, [JSON, admin, FRESH])
        common = {"concurrency": args.concurrency}
        return {
            "uncached": await load(
                api.app, body, [JSON, admin, FRESH], requests=args.uncached, **common
            ),
            "hit": await load(api.app, body, [JSON, admin], requests=args.hits, **common),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--uncached", type=int, default=160)
    parser.add_argument("--hits", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--settings", default=DEFAULT_SETTINGS, help="`off` or gen0,gen1,gen2; ';'")
    args = parser.parse_args()
    settings = args.settings.split(";")
    runs: dict[tuple[str, str], list[Pauses]] = defaultdict(list)
    for _ in range(args.rounds):
        for setting in settings:
            for kind, pauses in asyncio.run(measure(args.database_url, setting, args)).items():
                runs[setting, kind].append(pauses)
    print(
        "| GC setting | kind | gen0 / gen1 / gen2 per 1,000 requests | GC CPU ms per request"
        " | longest pause ms |\n| --- | --- | --- | --- | --- |"
    )
    for setting in settings:
        for kind, requests in (("uncached", args.uncached), ("hit", args.hits)):
            rounds = runs[setting, kind]
            per_k = [
                statistics.median(len(p.seconds[g]) for p in rounds) * 1000 / requests
                for g in (0, 1, 2)
            ]
            cpu = statistics.median(
                sum(sum(s) for s in p.seconds.values()) * 1000 / requests for p in rounds
            )
            longest = statistics.median(
                max((max(s) for s in p.seconds.values() if s), default=0.0) * 1000 for p in rounds
            )
            name = "default (untuned)" if setting == "off" else f"freeze + {setting}"
            print(
                f"| {name} | {kind} | {per_k[0]:.0f} / {per_k[1]:.1f} / {per_k[2]:.2f}"
                f" | {cpu:.3f} | {longest:.1f} |"
            )


if __name__ == "__main__":
    main()
