"""Persisted-query hits versus the same document sent as text: the catalog query.

Against a real `storefront serve` subprocess (one worker, LOG_LEVEL=warning),
wrk sends the catalog query for a fixed time in three forms: the document as
text (POST), an APQ hash only (POST), and an APQ hash only over GET. Reports
requests/s and p50/p95 latency of each. Then, optionally, registers
`--registrations` random APQ documents through HTTP and reports the server's
RSS and peak RSS (VmHWM) before and after, and how many answers were 5xx.

    .venv/bin/python -m bench.prepare        # once: create and seed bench_medium
    .venv/bin/python -m bench.persisted [--database-url URL] [--seconds 10]
        [--connections 8] [--registrations 100000] [--redis-url redis://127.0.0.1:6379/14]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from urllib.parse import urlencode

import httpx

from bench.common import DEFAULT_DATABASE_URL
from bench.processes import server, status_kb
from server.persisted.protocol import sha256_hex

CATALOG = (
    "query Catalog($n: Int!) { products(first: $n, sort: PRICE_ASC) { totalCount"
    " pageInfo { hasNextPage endCursor } nodes { id name priceCents averageRating reviewCount"
    " category { name parent { name } } reviews(first: 3) { nodes { rating body"
    " author { name } } } } } }"
)
VARIABLES = {"n": 10}

WRK_SCRIPT = """
wrk.method = os.getenv("BENCH_METHOD")
wrk.body = os.getenv("BENCH_BODY")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/graphql-response+json"

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d p50_us=%d p95_us=%d non2xx=%d socket_errors=%d\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
    e.status, e.connect + e.read + e.write + e.timeout))
end
"""


def wrk(url: str, *, method: str, body: str, seconds: int, connections: int) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT)
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", script.name, url]
    env = {**os.environ, "BENCH_METHOD": method, "BENCH_BODY": body}
    output = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=seconds + 30, check=True
    ).stdout
    os.unlink(script.name)
    line = next(x for x in output.splitlines() if x.startswith("BENCH "))
    fields = {k: int(v) for k, v in (part.split("=") for part in line.split()[1:])}
    return {
        "rps": fields["requests"] / (fields["duration_us"] / 1e6),
        "p50_ms": fields["p50_us"] / 1000,
        "p95_ms": fields["p95_us"] / 1000,
        "bad": fields["non2xx"] + fields["socket_errors"],
    }


def compare(base: str, *, seconds: int, connections: int) -> None:
    graphql = f"{base}/graphql"
    extensions = {"persistedQuery": {"version": 1, "sha256Hash": sha256_hex(CATALOG)}}
    registered = httpx.post(
        graphql, json={"query": CATALOG, "variables": VARIABLES, "extensions": extensions}
    ).json()
    if "errors" in registered:
        raise SystemExit(f"the catalog query failed: {registered['errors']}")
    print(f"catalog query: {len(CATALOG)} characters, {len(json.dumps(registered))} B answer")
    text_body = json.dumps({"query": CATALOG, "variables": VARIABLES})
    hash_body = json.dumps({"variables": VARIABLES, "extensions": extensions})
    get_url = (
        graphql
        + "?"
        + urlencode({"variables": json.dumps(VARIABLES), "extensions": json.dumps(extensions)})
    )
    runs = [
        ("document as text, POST", graphql, "POST", text_body),
        ("APQ hash only, POST", graphql, "POST", hash_body),
        ("APQ hash only, GET", get_url, "GET", ""),
    ]
    for _, url, method, body in runs:  # warm every path once
        wrk(url, method=method, body=body, seconds=2, connections=connections)
    print(f"\n{'form':<26}{'req/s':>10}{'p50 ms':>10}{'p95 ms':>10}{'bad':>6}")
    for name, url, method, body in runs:
        r = wrk(url, method=method, body=body, seconds=seconds, connections=connections)
        print(
            f"{name:<26}{r['rps']:>10.0f}{r['p50_ms']:>10.2f}{r['p95_ms']:>10.2f}{r['bad']:>6.0f}"
        )


async def register_randomly(base: str, count: int, concurrency: int = 8) -> dict[str, int]:
    """Register `count` random valid APQ documents; answers counted by status class."""
    statuses: dict[str, int] = {}
    remaining = iter(range(count))

    async def worker(client: httpx.AsyncClient) -> None:
        for _ in remaining:
            query = f"query R{secrets.token_hex(12)} {{ products(first: 1) {{ totalCount }} }}"
            extensions = {"persistedQuery": {"version": 1, "sha256Hash": sha256_hex(query)}}
            response = await client.post(
                "/graphql", json={"query": query, "extensions": extensions}
            )
            key = f"{response.status_code // 100}xx"
            statuses[key] = statuses.get(key, 0) + 1

    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return statuses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--redis-url", default=None, help="use Redis for persisted queries")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--registrations", type=int, default=0)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    # One client registers them all: lift its quota, so the store's own bounds are measured.
    env = {
        "DATABASE_URL": args.database_url,
        "APQ_REGISTRATIONS_PER_CLIENT": str(max(100, args.registrations)),
    }
    if args.redis_url:
        env["REDIS_URL"] = args.redis_url
    with server(env) as (base, process):
        compare(base, seconds=args.seconds, connections=args.connections)
        if args.registrations:
            before = {key: status_kb(process.pid, key) for key in ("VmRSS", "VmHWM")}
            started = time.perf_counter()
            statuses = asyncio.run(register_randomly(base, args.registrations))
            elapsed = time.perf_counter() - started
            after = {key: status_kb(process.pid, key) for key in ("VmRSS", "VmHWM")}
            print(f"\n{args.registrations} random APQ registrations in {elapsed:.0f} s: {statuses}")
            print(
                f"RSS  before {before['VmRSS'] / 1024:.1f} MB, after {after['VmRSS'] / 1024:.1f} MB"
            )
            print(
                f"peak before {before['VmHWM'] / 1024:.1f} MB, after {after['VmHWM'] / 1024:.1f} MB"
            )


if __name__ == "__main__":
    main()
