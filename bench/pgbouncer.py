"""Storefront directly on PostgreSQL vs through PgBouncer (transaction mode), and what
DB_POOLER=pgbouncer's settings cost on their own, on the dashboard and a product page.

Each mode is a real `storefront serve` (uncached: every request reaches the
database) loaded by wrk for a few seconds per workload; the modes are
interleaved round by round so a busy machine slows them alike. Printed per
run: requests/s, p50, server CPU ms per request (its process tree), PgBouncer's
CPU ms per request, errors (wrk's non-2xx, timeouts, ...; any GraphQL error is
caught by the warm-up), and the most connections PostgreSQL saw from the
benchmark at once (sampled every 50 ms: what sizes the pool).

Modes:
  direct           DB_POOLER=none: asyncpg's named, cached prepared statements,
                   statement_timeout a startup parameter, reads in autocommit
  unnamed          DB_POOLER=pgbouncer settings but straight to PostgreSQL, with
                   DB_STATEMENT_TIMEOUT_MS=0: the cost of prepared statements off alone
  unnamed+local    the same with the timeout on: + SET LOCAL and reads in transactions
  pgbouncer        through a real pgbouncer (deploy/pgbouncer.ini), DB_POOLER=pgbouncer

    .venv/bin/python -m bench.prepare --database-url URL      # once: a seeded `medium`
    .venv/bin/python -m bench.pgbouncer [--database-url URL] [--seconds 5]
        [--connections 16] [--rounds 2] [--workers 1] [--modes direct,pgbouncer]
        [--server-env DB_POOL_SIZE=10]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import asyncpg
import httpx

from bench.common import DEFAULT_DATABASE_URL, asyncpg_dsn
from bench.processes import cpu_ms, server
from bench.suite.load import Sample, wrk
from bench.suite.workloads import Workload, fixtures, workloads
from tests.pgbouncer_support import running_pgbouncer

MODES = {
    "direct": {"DB_POOLER": "none"},
    "unnamed": {"DB_POOLER": "pgbouncer", "DB_STATEMENT_TIMEOUT_MS": "0"},
    "unnamed+local": {"DB_POOLER": "pgbouncer"},
    "pgbouncer": {"DB_POOLER": "pgbouncer"},
}
WORKLOADS = ("dashboard", "product page")


@dataclass
class Figures:
    samples: list[Sample] = field(default_factory=list)
    bouncer_ms: list[float] = field(default_factory=list)
    peak_connections: list[int] = field(default_factory=list)


class ConnectionSampler:
    """The most backends PostgreSQL had open for the database at once, sampled."""

    def __init__(self, dsn: str, database: str) -> None:
        self.dsn, self.database = dsn, database
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self) -> None:
        conn = await asyncpg.connect(self.dsn)
        try:
            query = (
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = $1 AND pid <> pg_backend_pid()"
            )
            while not self._stop.is_set():
                self.peak = max(self.peak, int(await conn.fetchval(query, self.database)))
                await asyncio.sleep(0.05)
        finally:
            await conn.close()

    def __enter__(self) -> ConnectionSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


def warm_up(base: str, load: Workload) -> None:
    headers = {"Authorization": f"Bearer {load.token}"} if load.token else {}
    for _ in range(5):
        answer = httpx.post(
            f"{base}/graphql", content=load.body, headers=headers | _JSON, timeout=30
        ).json()
        if answer.get("errors"):
            raise SystemExit(f"{load.name} answered errors: {answer['errors']}")


_JSON = {"Content-Type": "application/json"}


@contextlib.contextmanager
def target(mode: str, database_url: str) -> Iterator[tuple[str, int | None]]:
    """The DATABASE_URL of `mode`, and the pgbouncer's pid when there is one."""
    if mode != "pgbouncer":
        yield database_url, None
        return
    with running_pgbouncer(database_url) as bouncer:
        yield bouncer.url, bouncer.process.pid


def run_mode(
    mode: str,
    args: argparse.Namespace,
    loads: list[Workload],
    results: dict[tuple[str, str], Figures],
) -> None:
    database = urlsplit(args.database_url).path.lstrip("/")
    with target(mode, args.database_url) as (url, bouncer_pid):
        env = {
            "DATABASE_URL": url,
            "CACHE_ENABLED": "false",
            **MODES[mode],
            **dict(item.split("=", 1) for item in args.server_env),
        }
        with server(env, workers=args.workers) as (base, process):
            for load in loads:
                warm_up(base, load)
                bouncer_before = cpu_ms(bouncer_pid) if bouncer_pid else 0.0
                with ConnectionSampler(asyncpg_dsn(args.database_url), database) as sampler:
                    sample = wrk(
                        f"{base}/graphql",
                        load.body,
                        load.token,
                        pid=process.pid,
                        connections=args.connections,
                        seconds=args.seconds,
                    )
                figures = results.setdefault((mode, load.name), Figures())
                figures.samples.append(sample)
                bouncer = cpu_ms(bouncer_pid) - bouncer_before if bouncer_pid else 0.0
                figures.bouncer_ms.append(bouncer / max(sample.requests, 1))
                figures.peak_connections.append(sampler.peak)
                print(
                    f"  {mode:14} {load.name:13} {sample.rps:7.1f} req/s  p50"
                    f" {sample.p50_ms:6.1f} ms  server {sample.cpu_ms_per_request:6.2f} ms/req"
                    f"  pgbouncer {figures.bouncer_ms[-1]:5.2f} ms/req  errors {sample.errors}"
                    f"  peak connections {sampler.peak}",
                    flush=True,
                )


def report(results: dict[tuple[str, str], Figures], modes: list[str]) -> None:
    print("\nmedians over rounds (ratio: to direct)")
    print(
        "| workload | mode | req/s | ratio | server CPU ms/req | pgbouncer CPU ms/req"
        " | p50 ms | errors | peak connections |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in WORKLOADS:
        base = results.get(("direct", name))
        base_rps = statistics.median(s.rps for s in base.samples) if base else None
        for mode in modes:
            figures = results.get((mode, name))
            if figures is None:
                continue
            rps = statistics.median(s.rps for s in figures.samples)
            cpu = statistics.median(s.cpu_ms_per_request for s in figures.samples)
            p50 = statistics.median(s.p50_ms for s in figures.samples)
            ratio = f"{rps / base_rps:.2f}" if base_rps else "-"
            print(
                f"| {name} | {mode} | {rps:.1f} | {ratio} | {cpu:.2f}"
                f" | {statistics.median(figures.bouncer_ms):.2f} | {p50:.1f}"
                f" | {sum(s.errors for s in figures.samples)} | {max(figures.peak_connections)} |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args()
    modes = args.modes.split(",")
    unknown = set(modes) - set(MODES)
    if unknown:
        raise SystemExit(f"unknown modes: {', '.join(sorted(unknown))} (known: {', '.join(MODES)})")
    given = asyncio.run(fixtures(args.database_url))
    loads = [load for load in workloads(given) if load.name in WORKLOADS]
    results: dict[tuple[str, str], Figures] = {}
    started = time.monotonic()
    for round_ in range(1, args.rounds + 1):
        print(f"round {round_}/{args.rounds}", flush=True)
        for mode in modes:
            run_mode(mode, args, loads, results)
    report(results, modes)
    print(
        f"\n{args.connections} wrk connections, {args.seconds:g} s per run, {args.workers}"
        f" worker(s); {time.monotonic() - started:.0f} s in all"
    )


if __name__ == "__main__":
    main()
