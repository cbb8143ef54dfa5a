"""Read replicas: throughput and CPU per request, primary only vs one streaming replica.

Makes its own primary and replica (tests/replication.py: `initdb`, `pg_basebackup`,
on free ports in a temporary folder, removed at the end), seeds the primary
(`small` by default), then runs two `storefront serve` processes (one worker,
result cache off so every request reads the database, rate limits lifted): one
with DATABASE_URL only, one with DATABASE_REPLICA_URLS too. Each workload (the
admin order dashboard, a one-product page) is driven with wrk against each server
in interleaved rounds, and the script prints requests/s, p50, the Storefront
process's CPU ms per request, and each PostgreSQL server's CPU ms per request (the
postmaster and its backends, from /proc).

What it shows on one machine: where the database work goes (with a replica, the
primary's CPU per request falls to about the write path's and authentication's, and
the replica does the reads) and what routing costs Storefront (its CPU per request).
What it does not show: more throughput. Both servers share the same cores as wrk
and Storefront, so moving reads to a replica on the same host frees no CPU; the
gain appears only when the replica has cores (a host) of its own.

    .venv/bin/python -m bench.replicas [--scale small|medium] [--seconds 5] [--rounds 2]
        [--connections 16]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field

from bench.common import DASHBOARD
from bench.processes import server, tree_cpu_ms
from bench.result_cache import run_wrk
from server.cli.migrate import upgrade
from server.cli.seed import seed
from server.database import create_engine
from server.settings import Settings
from tests.replication import Cluster, caught_up, replicated_pair, wait_for

PRODUCT_PAGE = (
    "query($id: ID!) { product(id: $id) { id name description priceCents averageRating "
    "reviewCount category { name } reviews(first: 10) { nodes { rating body createdAt "
    "author { name } } } } }"
)


@dataclass
class Tally:
    requests: int = 0
    seconds: float = 0.0
    bad: int = 0
    app_ms: float = 0.0
    server_ms: dict[str, float] = field(default_factory=dict)
    p50: list[float] = field(default_factory=list)


def postmaster_pid(cluster: Cluster) -> int:
    return int((cluster.data / "postmaster.pid").read_text().split()[0])


async def prepare(primary: Cluster, scale: str) -> None:
    await upgrade(primary.url)
    engine = create_engine(Settings.from_env({"DATABASE_URL": primary.url}))
    try:
        await seed(engine=engine, scale=scale)
    finally:
        await engine.dispose()
    primary.sql("VACUUM ANALYZE")


def admin_token(env: dict[str, str]) -> str:
    output = subprocess.run(
        [".venv/bin/storefront", "token", "create", "--email", "bench-replicas@example.com",
         "--role", "admin"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return output.split()[-1]


@contextlib.contextmanager
def two_servers(primary: Cluster, replica: Cluster) -> Iterator[dict[str, tuple[str, int]]]:
    base = {"DATABASE_URL": primary.url, "CACHE_ENABLED": "false", "LOG_LEVEL": "warning"}
    with_replica = {**base, "DATABASE_REPLICA_URLS": replica.url}
    with server(base) as (url_a, process_a), server(with_replica) as (url_b, process_b):
        yield {"primary only": (url_a, process_a.pid), "one replica": (url_b, process_b.pid)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", default="small", choices=("small", "medium"))
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    with replicated_pair() as (primary, replica):
        asyncio.run(prepare(primary, args.scale))
        wait_for(lambda: caught_up(primary, replica), "the replica replaying the seed", 120)
        token = admin_token({**os.environ, "DATABASE_URL": primary.url})
        product = {"query": PRODUCT_PAGE, "variables": {"id": "UHJvZHVjdDox"}}  # Product:1
        bodies = {
            "dashboard": json.dumps({"query": DASHBOARD, "variables": {"n": 50}}),
            "product page": json.dumps(product),
        }
        pids = {"primary": postmaster_pid(primary), "replica": postmaster_pid(replica)}
        tallies: dict[tuple[str, str], Tally] = {}
        with two_servers(primary, replica) as servers:
            for workload, body in bodies.items():
                for url, _ in servers.values():  # warm: connections, plans, statements
                    run_wrk(f"{url}/graphql", body, token, seconds=1, connections=4)
                for _ in range(args.rounds):
                    for setup, (url, pid) in servers.items():
                        tally = tallies.setdefault((workload, setup), Tally())
                        app_before = tree_cpu_ms(pid)
                        db_before = {name: tree_cpu_ms(p) for name, p in pids.items()}
                        rate = run_wrk(
                            f"{url}/graphql",
                            body,
                            token,
                            seconds=args.seconds,
                            connections=args.connections,
                        )
                        tally.requests += rate.requests
                        tally.seconds += rate.seconds
                        tally.bad += rate.bad
                        tally.p50.append(rate.p50_ms)
                        tally.app_ms += tree_cpu_ms(pid) - app_before
                        for name, p in pids.items():
                            used = tree_cpu_ms(p) - db_before[name]
                            tally.server_ms[name] = tally.server_ms.get(name, 0.0) + used
    print(f"scale {args.scale}, {args.rounds} interleaved rounds of {args.seconds} s, "
          f"{args.connections} connections (wrk), one worker, result cache off")  # fmt: skip
    print(
        f"{'workload':<13} {'setup':<13} {'req/s':>7} {'p50 ms':>7} {'bad':>4}"
        f" {'app CPU ms/req':>15} {'primary ms/req':>15} {'replica ms/req':>15}"
    )
    for (workload, setup), t in tallies.items():
        n = max(t.requests, 1)
        print(
            f"{workload:<13} {setup:<13} {t.requests / t.seconds:>7.0f}"
            f" {sorted(t.p50)[len(t.p50) // 2]:>7.1f} {t.bad:>4} {t.app_ms / n:>15.2f}"
            f" {t.server_ms['primary'] / n:>15.2f} {t.server_ms['replica'] / n:>15.2f}"
        )


if __name__ == "__main__":
    main()
