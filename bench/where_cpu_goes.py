"""Where a `make bench` workload's server CPU goes, as a table: py-spy under wrk.

The suite's flame graphs show the dashboard; a target missed elsewhere needs its own
profile, and a flame graph is hard to add up. This runs one `storefront serve` (as the
suite does: PostgreSQL `medium`, rate limits lifted), loads it with wrk (16
connections) while `py-spy record --format raw --nonblocking` samples it, and prints
server CPU per request, then the samples' shares: by where the CPU was spent (the
innermost frame's file, grouped into uvicorn and asyncio, the app's own packages, and
each library) and by function.

    .venv/bin/python -m bench.where_cpu_goes --workload "product page" [--cached]
        [--seconds 10] [--top 30] [--database-url URL] [--redis-url URL] [--output FILE]

`--cached` measures the workload as a cached hit (cache on in Redis, entry filled);
`--output` also writes the tables as Markdown.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import subprocess
import tempfile
from pathlib import Path

from bench.common import DEFAULT_DATABASE_URL
from bench.processes import cpu_ms, server
from bench.result_cache import run_wrk, warm
from bench.suite.flame import py_spy
from bench.suite.workloads import fixtures, workloads

# The innermost frame's file, grouped: where a sample's CPU went.
GROUPS = (
    ("uvicorn/", "uvicorn (HTTP parsing, writing)"),
    ("asyncio/", "asyncio and the event loop"),
    ("/server/", "storefront: server/"),
    ("/schema/", "storefront: schema/ (executor, cost)"),
    ("/loaders/", "storefront: loaders/"),
    ("/resolvers/", "storefront: resolvers/"),
    ("asyncpg/", "asyncpg"),
    ("sqlalchemy/", "SQLAlchemy"),
    ("aiodataloader/", "aiodataloader"),
    ("prometheus_client/", "prometheus-client"),
    ("strawberry/", "Strawberry"),
    ("graphql/", "graphql-core"),
    ("starlette/", "Starlette"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="dashboard")
    parser.add_argument("--cached", action="store_true")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    given = asyncio.run(fixtures(args.database_url))
    chosen = {w.name: w for w in workloads(given)}[args.workload]
    env = {"DATABASE_URL": args.database_url, "CACHE_ENABLED": "false"}
    if args.cached:
        env = {**env, "CACHE_ENABLED": "true", "REDIS_URL": args.redis_url}
    with tempfile.TemporaryDirectory() as scratch, server(env) as (base, process):
        url = f"{base}/graphql"
        warm(url, chosen.body, chosen.token, count=50)
        raw = Path(scratch) / "raw.txt"
        command = [py_spy(), "record", "--pid", str(process.pid), "--format", "raw"]
        command += ["--output", str(raw), "--duration", str(args.seconds), "--rate", "250"]
        spy = subprocess.Popen([*command, "--nonblocking"], stdout=subprocess.DEVNULL)
        before = cpu_ms(process.pid)
        rate = run_wrk(
            url, chosen.body, chosen.token, seconds=args.seconds, connections=args.connections
        )
        spent = cpu_ms(process.pid) - before
        spy.wait(timeout=args.seconds + 60)
        if rate.bad:
            raise SystemExit(f"{rate.bad} bad answers")
        by_group, by_function, total = _shares(raw.read_text(errors="replace"))
    title = f"{args.workload}{', cached hit' if args.cached else ', uncached'}"
    lines = [
        f"## {title}",
        "",
        f"Server CPU {spent * 1000 / rate.requests:.1f} µs/request, {rate.rps:,.0f} req/s"
        f" (wrk -c{args.connections}, {args.seconds} s); {total} py-spy samples.",
        "",
        "| where (innermost frame) | share |",
        "| --- | --- |",
        *(f"| {name} | {100 * n / total:.1f}% |" for name, n in by_group.most_common()),
        "",
        "| function (own time) | share |",
        "| --- | --- |",
        *(
            f"| `{name}` | {100 * n / total:.1f}% |"
            for name, n in by_function.most_common(args.top)
        ),
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.output is not None:
        args.output.write_text(text)


def _shares(raw: str) -> tuple[collections.Counter[str], collections.Counter[str], int]:
    """Samples by group and by function, from py-spy's raw (collapsed stacks) output."""
    by_group: collections.Counter[str] = collections.Counter()
    by_function: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        samples = int(count)
        total += samples
        leaf = stack.split(";")[-1]
        function, _, where = leaf.partition(" (")
        path = where.rsplit(":", 1)[0]
        by_function[f"{function or 'C code'} ({'/'.join(path.split('/')[-2:])})"] += samples
        group = next((name for key, name in GROUPS if key in f"/{path}"), None)
        by_group[group or f"other: {'/'.join(path.split('/')[-2:]) or 'C code'}"] += samples
    return by_group, by_function, total


if __name__ == "__main__":
    main()
