"""The result cache on PostgreSQL + Redis at `medium` scale: cached vs uncached, and a mixed run.

1. Requests/s of the order dashboard (an admin's 50 newest orders, private) and of
   a catalog page (anonymous: 20 products with category, rating and review count,
   and the categories), against a real `storefront serve` (one worker), with the
   result cache off and then on (Redis). wrk drives them when installed (else httpx).
2. A mixed run with the cache on: 90% reads drawn uniformly from 200 distinct
   queries (product pages, product listings by category, search and page size),
   10% writes (updateProduct price, addReview): the hit ratio from `X-Cache`.

Writes are undone afterwards (prices restored, the run's reviews and users deleted).

    .venv/bin/python -m bench.prepare          # once: create and seed bench_medium
    .venv/bin/python -m bench.result_cache [--database-url URL]
        [--redis-url redis://127.0.0.1:6379/13] [--seconds 10] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
from redis.asyncio import Redis

from bench.common import DASHBOARD, DEFAULT_DATABASE_URL, admin_token, asyncpg_dsn, in_process_app
from bench.dashboard import tree_state
from bench.processes import server
from schema.global_id import to_global_id

TARGET_SPEEDUP = 10.0
CATALOG = """query($first: Int!) {
  categories { name }
  products(first: $first) { nodes { name priceCents averageRating reviewCount category { name } } }
}"""
PRODUCT_PAGE = """query($id: ID!) { product(id: $id) {
  name description priceCents averageRating reviewCount category { name }
  reviews(first: 5) { nodes { rating body author { name } } }
} }"""
LISTING = """query($filter: ProductFilter, $first: Int!) {
  products(filter: $filter, first: $first) { totalCount nodes { name priceCents } }
}"""
UPDATE_PRICE = """mutation($id: ID!, $price: Int!) {
  updateProduct(id: $id, input: {priceCents: $price}) { id } }"""
ADD_REVIEW = """mutation($id: ID!) {
  addReview(input: {productId: $id, rating: 4, body: "bench"}) { id } }"""
BENCH_USERS = "bench-cache-%@example.com"

WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY")
wrk.headers["Content-Type"] = "application/json"
local token = os.getenv("BENCH_TOKEN")
if token ~= "" then wrk.headers["Authorization"] = "Bearer " .. token end
bad = 0
function response(status, headers, body)
  if status ~= 200 or string.find(body, '"errors"', 1, true) then bad = bad + 1 end
end
local threads = {}
function setup(thread) table.insert(threads, thread) end
function done(summary, latency, requests)
  local b = 0
  for _, t in ipairs(threads) do b = b + t:get("bad") end
  io.write(string.format("BENCH requests=%d duration_us=%d p50_us=%d bad=%d\\n",
    summary.requests, summary.duration, latency:percentile(50), b))
end
"""


@dataclass
class Rate:
    requests: int
    seconds: float
    p50_ms: float
    bad: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


def run_wrk(url: str, body: str, token: str, *, seconds: int, connections: int) -> Rate:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT)
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", script.name, url]
    env = {**os.environ, "BENCH_BODY": body, "BENCH_TOKEN": token}
    try:
        output = subprocess.run(
            command, env=env, capture_output=True, text=True, check=True, timeout=seconds + 60
        ).stdout
    finally:
        os.unlink(script.name)
    match = re.search(r"^BENCH (.*)$", output, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    values = {k: int(v) for k, v in (kv.split("=") for kv in match[1].split())}
    return Rate(
        values["requests"], values["duration_us"] / 1e6, values["p50_us"] / 1000, values["bad"]
    )


async def run_httpx(url: str, body: str, token: str, *, seconds: int, connections: int) -> Rate:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    latencies: list[float] = []
    bad = 0
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=connections)
    async with httpx.AsyncClient(limits=limits, timeout=10) as client:

        async def worker() -> None:
            nonlocal bad
            while time.monotonic() < deadline:
                started = time.perf_counter()
                response = await client.post(url, content=body, headers=headers)
                latencies.append(time.perf_counter() - started)
                bad += response.status_code != 200 or b'"errors"' in response.content

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return Rate(len(latencies), elapsed, latencies[len(latencies) // 2] * 1000, bad)


def load(client: str, url: str, body: str, token: str, *, seconds: int, connections: int) -> Rate:
    if client == "wrk":
        return run_wrk(url, body, token, seconds=seconds, connections=connections)
    return asyncio.run(run_httpx(url, body, token, seconds=seconds, connections=connections))


def warm(url: str, body: str, token: str, count: int = 20) -> None:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    with httpx.Client(timeout=30) as client:
        for _ in range(count):
            response = client.post(url, content=body, headers=headers)
            if response.status_code != 200 or b'"errors"' in response.content:
                raise RuntimeError(f"{response.status_code}: {response.text[:300]}")


async def clear_redis(url: str) -> None:
    client = Redis.from_url(url)
    try:
        keys = [k async for k in client.scan_iter(match="sf:v1:cache:*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


def compare(args: argparse.Namespace, token: str) -> list[tuple[str, Rate, Rate]]:
    """(workload, uncached, cached) for the dashboard and the catalog."""
    workloads = [
        ("order dashboard", json.dumps({"query": DASHBOARD, "variables": {"n": 50}}), token),
        ("catalog", json.dumps({"query": CATALOG, "variables": {"first": 20}}), ""),
    ]
    results = []
    for name, body, workload_token in workloads:
        rates = []
        for cached in (False, True):
            asyncio.run(clear_redis(args.redis_url))
            env = {
                "DATABASE_URL": args.database_url,
                "CACHE_ENABLED": "true" if cached else "false",
                "REDIS_URL": args.redis_url,
            }
            with server(env) as (base, _):
                url = f"{base}/graphql"
                warm(url, body, workload_token)
                rates.append(
                    load(
                        args.client,
                        url,
                        body,
                        workload_token,
                        seconds=args.seconds,
                        connections=args.concurrency,
                    )
                )
        results.append((name, rates[0], rates[1]))
    return results


# The mixed run ----------------------------------------------------------------------


async def mixed_run(
    args: argparse.Namespace, url: str, customers: list[str], admin: str
) -> Counter[str]:
    """X-Cache counts of reads (and `write` of writes) over a 90/10 run."""
    connection = await asyncpg.connect(asyncpg_dsn(args.database_url))
    try:
        rows = await connection.fetch(
            "SELECT id, category_id FROM products WHERE active ORDER BY id LIMIT 150"
        )
        categories = [r["id"] for r in await connection.fetch("SELECT id FROM categories LIMIT 25")]
    finally:
        await connection.close()
    products = [to_global_id("Product", r["id"]) for r in rows]
    reads: list[tuple[str, dict[str, Any]]] = [(PRODUCT_PAGE, {"id": p}) for p in products]
    reads += [
        (LISTING, {"filter": {"categoryId": to_global_id("Category", c)}, "first": 10})
        for c in categories
    ]
    reads += [
        (LISTING, {"filter": {"search": term}, "first": first})
        for term in ("a", "e", "o", "lamp", "chair")
        for first in (5, 10, 15, 20, 25)
    ]
    assert len(reads) == 200, len(reads)
    rng = random.Random(7)
    counts: Counter[str] = Counter()
    limits = httpx.Limits(max_connections=args.concurrency)
    remaining = args.mixed_requests
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                if rng.random() < 0.1:
                    product = rng.choice(products)
                    if rng.random() < 0.5:
                        variables = {"id": product, "price": rng.randint(100, 99_999)}
                        body = {"query": UPDATE_PRICE, "variables": variables}
                        headers = {"Authorization": f"Bearer {admin}"}
                    else:
                        body = {"query": ADD_REVIEW, "variables": {"id": product}}
                        headers = {"Authorization": f"Bearer {rng.choice(customers)}"}
                    await client.post(url, json=body, headers=headers)
                    counts["write"] += 1
                    continue
                query, variables = rng.choice(reads)
                response = await client.post(url, json={"query": query, "variables": variables})
                if response.status_code != 200 or b'"errors"' in response.content:
                    raise RuntimeError(f"{response.status_code}: {response.text[:300]}")
                counts[response.headers.get("x-cache", "?")] += 1

        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    return counts


async def bench_tokens(database_url: str) -> tuple[str, list[str]]:
    """(an admin's token, customers' tokens)."""
    from resolvers.tokens import create_token

    async with in_process_app(database_url) as api:
        token = await admin_token(api.app)
        sessionmaker = api.services.sessionmaker
        customers = [
            (await create_token(sessionmaker=sessionmaker, email=BENCH_USERS.replace("%", str(i))))
            for i in range(20)
        ]
    return token, [c.token for c in customers]


async def snapshot_prices(database_url: str) -> list[tuple[Any, ...]]:
    """(id, price, updated_at) of every product, to undo the run's price changes."""
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        rows = await connection.fetch("SELECT id, price_cents, updated_at FROM products")
        return [tuple(r) for r in rows]
    finally:
        await connection.close()


async def undo_writes(database_url: str, prices: list[tuple[Any, ...]]) -> None:
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        async with connection.transaction():
            await connection.executemany(
                "UPDATE products SET price_cents = $2, updated_at = $3"
                " WHERE id = $1 AND updated_at <> $3",
                prices,
            )
            bench_users = "SELECT id FROM users WHERE email LIKE $1"
            await connection.execute(
                f"DELETE FROM reviews WHERE user_id IN ({bench_users})", BENCH_USERS
            )
            await connection.execute(
                f"DELETE FROM api_tokens WHERE user_id IN ({bench_users})", BENCH_USERS
            )
            await connection.execute("DELETE FROM users WHERE email LIKE $1", BENCH_USERS)
    finally:
        await connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--seconds", type=int, default=10, help="each load phase")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--mixed-requests", type=int, default=5000)
    parser.add_argument(
        "--client", choices=["wrk", "httpx"], default="wrk" if shutil.which("wrk") else "httpx"
    )
    args = parser.parse_args()
    load_average = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"code: {tree_state()}; machine: {os.cpu_count()} cores, load average {load_average}")
    print(f"load generator: {args.client}, {args.concurrency} connections, {args.seconds} s each")

    prices = asyncio.run(snapshot_prices(args.database_url))
    admin, customers = asyncio.run(bench_tokens(args.database_url))
    try:
        results = compare(args, admin)
        asyncio.run(clear_redis(args.redis_url))
        env = {
            "DATABASE_URL": args.database_url,
            "CACHE_ENABLED": "true",
            "REDIS_URL": args.redis_url,
        }
        with server(env) as (base, _):
            started = time.perf_counter()
            counts = asyncio.run(mixed_run(args, f"{base}/graphql", customers, admin))
            elapsed = time.perf_counter() - started
    finally:
        asyncio.run(undo_writes(args.database_url, prices))
        asyncio.run(clear_redis(args.redis_url))

    header = f"{'workload':<16} {'uncached req/s':>14} {'cached req/s':>12} {'speedup':>8}"
    print("\n" + header + "\n" + "-" * len(header))
    for name, uncached, cached in results:
        speedup = cached.rps / uncached.rps
        verdict = "PASS" if speedup >= TARGET_SPEEDUP else "FAIL"
        print(
            f"{name:<16} {uncached.rps:>14.1f} {cached.rps:>12.1f} {speedup:>7.1f}x  "
            f"(p50 {uncached.p50_ms:.1f} -> {cached.p50_ms:.2f} ms; bad "
            f"{uncached.bad + cached.bad}) target >= {TARGET_SPEEDUP:.0f}x: {verdict}"
        )
    reads = sum(v for k, v in counts.items() if k != "write")
    hits = counts["HIT"] + counts["STALE"]
    print(
        f"\nmixed run: {reads + counts['write']} requests in {elapsed:.1f} s "
        f"({(reads + counts['write']) / elapsed:.0f} req/s), {counts['write']} writes; "
        f"reads by X-Cache: {dict(counts - Counter(write=counts['write']))}; "
        f"hit ratio {hits / reads:.1%}"
    )


if __name__ == "__main__":
    main()
