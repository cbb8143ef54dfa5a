"""The order-dashboard benchmark on PostgreSQL at `medium` scale.

Query: the admin's 50 newest orders with customer, items, product, rating and
category. Reports statements (and pool checkouts) per request, counted in-process;
then, against a real `storefront serve` subprocess (one worker, LOG_LEVEL=warning,
rate limits raised out of reach),
latency (median, p95), requests/s, server CPU ms per request (utime+stime from
/proc) and the server's peak RSS (VmHWM), for 16 concurrent clients and for one
sequential client. The load generator is wrk (C) when installed, else httpx; it
shares the machine's cores with the server, so the concurrent figures are a floor.

    .venv/bin/python -m bench.prepare        # once: create and seed bench_medium
    .venv/bin/python -m bench.dashboard [--database-url URL] [--requests 2000]
        [--concurrency 16] [--client wrk|httpx] [--server-env DB_POOL_PRE_PING=false]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import selectors
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy import event

from bench.common import (
    DASHBOARD,
    DEFAULT_DATABASE_URL,
    admin_token,
    asyncpg_dsn,
    in_process_app,
)
from bench.processes import cpu_ms, server, status_kb

TARGET_CPU_MS = 20.0
TARGET_STATEMENTS = 6
TARGET_RSS_MB = 250.0

WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")

local threads = {}
local quota = 0

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  quota = tonumber(args[1])
  count = 0
  bad = 0
end

function response(status, headers, body)
  count = count + 1
  if status ~= 200 or string.find(body, '"errors"', 1, true) then
    bad = bad + 1
  end
  if count == quota then
    -- wrk runs until -d even when every thread stopped: tell the caller, who sends SIGINT.
    io.write("THREAD_DONE\\n")
    io.flush()
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local bad_total = 0
  for _, thread in ipairs(threads) do
    bad_total = bad_total + thread:get("bad")
  end
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d p50_us=%d p95_us=%d bad=%d socket_errors=%d\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
    bad_total, e.connect + e.read + e.write + e.status + e.timeout))
end
"""


@dataclass
class Phase:
    name: str
    clients: int
    requests: int
    seconds: float
    p50_ms: float
    p95_ms: float
    cpu_ms: float
    bad: int
    connections: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_ms_per_request(self) -> float:
        return self.cpu_ms / self.requests


async def db_sessions(database_url: str) -> int:
    """Sessions ever opened on the database (this one included): new connections show here."""
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        query = "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
        return int(await conn.fetchval(query))
    finally:
        await conn.close()


# In-process: statements and pool checkouts of one request -----------------------------


async def count_statements(
    database_url: str, n: int, extra_env: dict[str, str]
) -> tuple[str, list[str], int, int]:
    """(admin token, statements of one request, pool checkouts, edges returned)."""
    async with in_process_app(database_url, extra_env) as api:
        token = await admin_token(api.app)
        checkouts: list[int] = []

        def on_checkout(*_args: Any) -> None:
            checkouts.append(1)

        event.listen(api.services.engine.sync_engine.pool, "checkout", on_checkout)
        await api.post(DASHBOARD, {"n": n}, token)  # warm: compiled caches, prepared statements
        api.recorder.clear()
        checkouts.clear()
        data = await api.post(DASHBOARD, {"n": n}, token)
        statements = [statement for statement, _ in api.recorder.statements]
        return token, statements, len(checkouts), len(data["orders"]["edges"])


# The server subprocess --------------------------------------------------------------


# Load generators ---------------------------------------------------------------------


def run_wrk(
    url: str, body: str, token: str, *, clients: int, requests: int, max_seconds: int
) -> tuple[int, float, float, float, int]:
    """(requests, seconds, p50 ms, p95 ms, bad responses) from one wrk run.

    Each wrk thread stops after its share of `requests` and says so on stdout;
    once all have, wrk gets SIGINT and prints its summary. Requests still in
    flight on other connections at that moment are dropped (at most clients - 1).
    """
    threads = min(2, clients)
    quota = -(-requests // threads)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT)
    command = ["wrk", f"-t{threads}", f"-c{clients}", f"-d{max_seconds}s", "--timeout", "10s"]
    command += ["-s", script.name, url, "--", str(quota)]
    env = {**os.environ, "BENCH_BODY": body, "BENCH_TOKEN": token}
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE)
    try:
        assert process.stdout is not None
        seen = b""
        deadline = time.monotonic() + max_seconds + 10
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            # Raw reads: a buffered readline could hold a line select() no longer sees.
            while seen.count(b"THREAD_DONE") < threads and time.monotonic() < deadline:
                if not selector.select(timeout=1):
                    continue
                chunk = os.read(process.stdout.fileno(), 65536)
                if not chunk:
                    break  # wrk exited
                seen += chunk
        seconds = time.perf_counter() - started
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=30)
        output = (seen + rest).decode()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        os.unlink(script.name)
    match = re.search(r"^BENCH (.*)$", output, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    values = {key: int(value) for key, value in (kv.split("=") for kv in match[1].split())}
    return (
        values["requests"],
        seconds,
        values["p50_us"] / 1000,
        values["p95_us"] / 1000,
        values["bad"] + values["socket_errors"],
    )


async def run_httpx(
    url: str, body: str, token: str, *, clients: int, requests: int, max_seconds: int
) -> tuple[int, float, float, float, int]:
    """The same as `run_wrk`, with `clients` asyncio tasks sharing one httpx pool."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    latencies: list[float] = []
    bad = 0
    remaining = requests
    deadline = time.monotonic() + max_seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async with httpx.AsyncClient(limits=limits, timeout=10) as client:

        async def worker() -> None:
            nonlocal remaining, bad
            while remaining > 0 and time.monotonic() < deadline:
                remaining -= 1
                started = time.perf_counter()
                response = await client.post(url, content=body, headers=headers)
                latencies.append(time.perf_counter() - started)
                if response.status_code != 200 or b'"errors"' in response.content:
                    bad += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        seconds = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return len(latencies), seconds, cuts[49] * 1000, cuts[94] * 1000, bad


def measure(
    name: str,
    pid: int,
    client: str,
    url: str,
    body: str,
    token: str,
    *,
    database_url: str,
    clients: int,
    requests: int,
    max_seconds: int,
) -> Phase:
    sessions = asyncio.run(db_sessions(database_url))
    before = cpu_ms(pid)
    if client == "wrk":
        result = run_wrk(
            url, body, token, clients=clients, requests=requests, max_seconds=max_seconds
        )
    else:
        result = asyncio.run(
            run_httpx(url, body, token, clients=clients, requests=requests, max_seconds=max_seconds)
        )
    used = cpu_ms(pid) - before
    # Minus one: the connection that reads the counter counts itself.
    connections = asyncio.run(db_sessions(database_url)) - sessions - 1
    done, seconds, p50, p95, bad = result
    return Phase(name, clients, done, seconds, p50, p95, used, bad, connections)


def warm_up(url: str, body: str, token: str, count: int) -> None:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    with httpx.Client(timeout=10) as client:
        for _ in range(count):
            response = client.post(url, content=body, headers=headers)
            response.raise_for_status()
            if b'"errors"' in response.content:
                raise RuntimeError(f"GraphQL errors: {response.text[:500]}")


# Report ------------------------------------------------------------------------------


def report(
    statements: list[str], checkouts: int, phases: list[Phase], peak_rss_mb: float, client: str
) -> None:
    print(f"\nstatements per request: {len(statements)}  (pool checkouts: {checkouts})")
    for statement in statements:
        print("  " + re.sub(r"\s+", " ", statement)[:110])
    print(f"\nload generator: {client}")
    header = (
        f"{'phase':<12} {'clients':>7} {'requests':>8} {'req/s':>7} {'p50 ms':>7} "
        f"{'p95 ms':>7} {'CPU ms/req':>10} {'bad':>4} {'new DB conns':>12}"
    )
    print(header)
    print("-" * len(header))
    for p in phases:
        print(
            f"{p.name:<12} {p.clients:>7} {p.requests:>8} {p.rps:>7.1f} {p.p50_ms:>7.1f} "
            f"{p.p95_ms:>7.1f} {p.cpu_ms_per_request:>10.2f} {p.bad:>4} {p.connections:>12}"
        )
    print(f"server peak RSS (VmHWM): {peak_rss_mb:.1f} MB")
    worst_cpu = max(p.cpu_ms_per_request for p in phases)
    checks = [
        (
            f"server CPU <= {TARGET_CPU_MS:.0f} ms/request (worst phase)",
            f"{worst_cpu:.2f}",
            worst_cpu <= TARGET_CPU_MS,
        ),
        (
            f"statements <= {TARGET_STATEMENTS}",
            str(len(statements)),
            len(statements) <= TARGET_STATEMENTS,
        ),
        (f"peak RSS < {TARGET_RSS_MB:.0f} MB", f"{peak_rss_mb:.1f}", peak_rss_mb < TARGET_RSS_MB),
    ]
    print("\ntargets:")
    for name, value, ok in checks:
        print(f"  {name:<45} {value:>8}  {'PASS' if ok else 'FAIL'}")


def tree_state() -> str:
    """The commit and whether the work tree differs from it: figures belong to a state."""
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{commit}{' + uncommitted changes' if dirty else ''}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--n", type=int, default=50, help="orders per request")
    parser.add_argument("--requests", type=int, default=2000, help="concurrent phase")
    parser.add_argument("--sequential-requests", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--max-seconds", type=int, default=300, help="bound of each phase")
    parser.add_argument(
        "--client", choices=["wrk", "httpx"], default="wrk" if shutil.which("wrk") else "httpx"
    )
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment of the server (repeatable)",
    )
    args = parser.parse_args()
    # Execution is what is measured: the result cache (on by default) would answer
    # every request after the first. `--server-env CACHE_ENABLED=true` measures hits.
    extra_env = {"CACHE_ENABLED": "false"} | dict(item.split("=", 1) for item in args.server_env)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"code: {tree_state()}; machine: {os.cpu_count()} cores, load average {load}")

    token, statements, checkouts, edges = asyncio.run(
        count_statements(args.database_url, args.n, extra_env)
    )
    if edges != args.n:
        raise SystemExit(f"expected {args.n} orders, got {edges}: is the database seeded?")
    body = json.dumps({"query": DASHBOARD, "variables": {"n": args.n}})
    with server({"DATABASE_URL": args.database_url, **extra_env}) as (base, process):
        url = f"{base}/graphql"
        warm_up(url, body, token, args.warmup)
        common: dict[str, Any] = {
            "max_seconds": args.max_seconds,
            "database_url": args.database_url,
        }
        phases = [
            measure(
                "sequential",
                process.pid,
                args.client,
                url,
                body,
                token,
                clients=1,
                requests=args.sequential_requests,
                **common,
            ),
            measure(
                "concurrent",
                process.pid,
                args.client,
                url,
                body,
                token,
                clients=args.concurrency,
                requests=args.requests,
                **common,
            ),
        ]
        peak_rss_mb = status_kb(process.pid, "VmHWM") / 1024
    if extra_env:
        print("server env: " + " ".join(f"{k}={v}" for k, v in extra_env.items()))
    report(statements, checkouts, phases, peak_rss_mb, args.client)


if __name__ == "__main__":
    main()
