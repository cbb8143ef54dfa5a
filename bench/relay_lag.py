"""Relay lag: from a write's commit to its event published on Redis, at a steady rate.

A real `storefront worker` relays; this script commits writes (each one transaction
holding one outbox event, as a mutation records it) at `--rate` per second, and a
subscriber of the events channel notes when each event arrives. Lag = arrival -
commit, both read on this host's monotonic clock. PostgreSQL (the worker wakes on
the commit's NOTIFY) and Redis are required. The database is migrated, and the
outbox emptied first: use a database of its own.

    .venv/bin/python -m bench.relay_lag --rate 200 --seconds 20 \\
        --database-url postgresql://postgres@127.0.0.1:5432/sf_bench \\
        --redis-url redis://127.0.0.1:6379/1
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

from redis.asyncio import Redis
from sqlalchemy import delete

from models import OutboxEvent
from resolvers.changes import Changes
from resolvers.events import new_event, record_events
from server.cli.migrate import upgrade
from server.database import create_engine, create_sessionmaker
from server.events.messages import decode
from server.events.redis_channel import events_channel
from server.settings import Settings, normalize_database_url

ROOT = Path(__file__).resolve().parent.parent


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main(args: argparse.Namespace) -> None:
    url = normalize_database_url(args.database_url)
    await upgrade(url)
    settings = Settings.from_env({"DATABASE_URL": url})
    engine = create_engine(settings)
    sessionmaker = create_sessionmaker(engine)
    async with sessionmaker.begin() as session:
        await session.execute(delete(OutboxEvent))

    redis = Redis.from_url(args.redis_url)
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(events_channel(redis))
    committed: dict[str, float] = {}
    arrived: dict[str, float] = {}

    async def listen() -> None:
        while True:
            message = await pubsub.get_message(timeout=1.0)
            if message is not None:
                arrived[decode(message["data"]).event_id] = time.monotonic()

    worker = subprocess.Popen(  # noqa: ASYNC220 - started once, before the clock runs
        [sys.executable, "-m", "server.cli", "worker"],
        env={
            **os.environ,
            "DATABASE_URL": url,
            "REDIS_URL": args.redis_url,
            "LOG_LEVEL": "warning",
        },
        cwd=ROOT,
    )
    listener = asyncio.create_task(listen())
    try:
        await asyncio.sleep(args.warmup)  # the worker imports and starts listening
        tags = Changes.from_tags({"Product:1"})
        total = int(args.rate * args.seconds)
        start = time.monotonic()

        pool = asyncio.Semaphore(16)  # within the engine's pool

        async def write(i: int) -> None:
            event = new_event("product.updated", "UHJvZHVjdDox", {"i": i}, tags)
            async with pool, sessionmaker.begin() as session:
                await record_events(session, [event])
            committed[event.event_id] = time.monotonic()

        writes = []
        for i in range(total):
            # Open loop: each write starts on schedule, whatever the previous did.
            delay = start + i / args.rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            writes.append(asyncio.create_task(write(i)))
        await asyncio.gather(*writes)
        elapsed = time.monotonic() - start
        deadline = time.monotonic() + 30
        while len(arrived.keys() & committed.keys()) < len(committed):
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
    finally:
        listener.cancel()
        worker.terminate()
        worker.wait(timeout=30)
        await pubsub.aclose()  # type: ignore[no-untyped-call]
        await redis.aclose()
        await engine.dispose()

    lags = [(arrived[k] - committed[k]) * 1000 for k in committed if k in arrived]
    missing = len(committed) - len(lags)
    print(f"command: {shlex.join([sys.executable, '-m', 'bench.relay_lag', *sys.argv[1:]])}")
    print(f"writes: {len(committed)} in {elapsed:.1f} s ({len(committed) / elapsed:.0f}/s)")
    print(
        f"relay lag commit -> published (ms): p50 {statistics.median(lags):.1f}"
        f"  p90 {percentile(lags, 0.9):.1f}  p99 {percentile(lags, 0.99):.1f}"
        f"  max {max(lags):.1f}  (missing: {missing})"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("TEST_DATABASE_URL", ""))
    parser.add_argument("--redis-url", default=os.environ.get("TEST_REDIS_URL", ""))
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=15.0)
    asyncio.run(main(parser.parse_args()))
