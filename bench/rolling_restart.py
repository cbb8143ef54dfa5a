"""A rolling restart of two hosts behind HAProxy under steady load: sent, failed, p50, p99.

Two `storefront serve` instances, each in a network namespace of its own
(bench/cluster.py), share a private Redis and PostgreSQL (through PgBouncer,
or a plain TCP forwarder with `--no-pgbouncer`), behind HAProxy configured by
deploy/haproxy.cfg. Concurrent clients send reads, persisted (APQ) reads and a
few writes (with an Idempotency-Key) through HAProxy, while each instance in
turn is sent SIGTERM, waited for, started again and waited for until HAProxy
sees it up. Prints, for the whole run and for the restarts alone, the requests
sent, failed (an exception, a status other than 200, or an answer with
errors), p50 and p99. Needs root, iproute2, haproxy, redis-server and pgbouncer
(`make scaleout-deps`); the database is emptied and seeded (`small`).

    createdb -h 127.0.0.1 -U postgres bench_rolling
    sudo .venv/bin/python -m bench.rolling_restart \
        --database-url postgresql://postgres@127.0.0.1:5432/bench_rolling \
        [--clients 8] [--rounds 3] [--pause 2] [--client-pause 0.02] [--no-pgbouncer]

tests/scaleout/test_rolling_restart.py runs the same scenario, shorter.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import random
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy.engine import make_url

from bench.cluster import HAProxy, Instance, Network, RedisServer, Unavailable
from server.persisted.protocol import sha256_hex

# Public answers (result-cache hits after the first), by id and as a page.
READ = "query Product($id: ID!) { product(id: $id) { id name priceCents } }"
PAGE = "query Page { products(first: 10) { nodes { id name category { name } } } }"
# Sent as an APQ hash only, once registered.
PERSISTED = "query Persisted { categories { name } }"
WRITE = "mutation Rename($id: ID!, $name: String!) { updateProduct(id: $id, input: {name: $name}) { id name } }"  # noqa: E501
PRODUCTS = 20  # the products reads and writes pick from (ids 1..PRODUCTS)
STARTUP = 120.0  # seconds an instance may take to be ready (a loaded CI machine)

# A front for PostgreSQL the namespaces can reach: (address to listen on, the
# database's URL) -> a context manager yielding the host and port to connect to,
# and the DB_POOLER they need.
DatabaseFront = Callable[[str, str], AbstractContextManager[tuple[str, int, str]]]


def instance_env(
    *, database_url: str, redis_url: str, trusted: str, extra: dict[str, str] | None = None
) -> dict[str, str]:
    """What each instance runs with (deploy/README.md, "Settings by tier")."""
    return {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "TRUSTED_PROXIES": trusted,
        # HAProxy takes an instance out within 2 s of its first failed check.
        "SHUTDOWN_GRACE_SECONDS": "3",
        "SHUTDOWN_TIMEOUT_SECONDS": "10",
        "REDIS_TIMEOUT_MS": "1000",  # a loaded test machine, not a quiet LAN
        "GC_TUNING": "false",  # a full collection per start: slower restarts on a busy CI
        **(extra or {}),
    }


@dataclass
class Cluster:
    network: Network
    redis: RedisServer
    instances: list[Instance]
    haproxy: HAProxy
    database_url: str  # as the instances reach it

    @property
    def url(self) -> str:
        return self.haproxy.url


@contextlib.contextmanager
def cluster(
    database_url: str,
    database_front: DatabaseFront,
    *,
    count: int = 2,
    extra_env: dict[str, str] | None = None,
) -> Iterator[Cluster]:
    """`count` instances over `database_url` (PostgreSQL on 127.0.0.1) behind HAProxy,
    each up and passing HAProxy's checks. Raises `Unavailable` when the machine cannot."""
    with (
        Network(count) as network,
        RedisServer(network.service_address) as redis,
        database_front(network.service_address, database_url) as (host, port, pooler),
    ):
        reached = make_url(database_url).set(drivername="postgresql", host=host, port=port)
        env = instance_env(
            database_url=reached.render_as_string(hide_password=False),
            redis_url=redis.url,
            trusted=network.subnet,
            extra={"DB_POOLER": pooler, **(extra_env or {})},
        )
        with contextlib.ExitStack() as stack:
            # Launched side by side: each takes seconds to import the app.
            instances = [stack.enter_context(Instance(host, env)) for host in network.hosts]
            # On the way out, all are told at once, then each is waited for.
            stack.callback(lambda: [instance.terminate() for instance in instances])
            for instance in instances:
                instance.wait_until_ready(STARTUP)
            haproxy = stack.enter_context(HAProxy([i.address for i in instances]))
            haproxy.wait_until_up(count, timeout=STARTUP)
            yield Cluster(network, redis, instances, haproxy, env["DATABASE_URL"])


@dataclass(frozen=True)
class Outcome:
    kind: str
    start: float  # time.monotonic()
    seconds: float
    error: str | None  # None: a good answer


@dataclass
class Load:
    """`clients` concurrent clients through `url`, each with its own admin token, in a
    thread of their own until `stop()`; a short pause between each client's requests."""

    url: str
    tokens: list[str]
    pause: float = 0.01
    outcomes: list[Outcome] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self._names = itertools.count()

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=60)

    async def _run(self) -> None:
        async with httpx.AsyncClient(base_url=self.url, timeout=30) as client:
            await register_persisted(client)
            await asyncio.gather(*(self._client(client, token) for token in self.tokens))

    async def _client(self, client: httpx.AsyncClient, token: str) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        rng = random.Random(token)
        while not self._stopping.is_set():
            kind = rng.choices(["read", "page", "persisted", "write"], [50, 15, 30, 5])[0]
            product = _product_id(rng.randrange(1, PRODUCTS + 1))
            start = time.monotonic()
            error: str | None
            try:
                response = await self._send(client, kind, product, headers)
                error = _failure(response)
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
            self.outcomes.append(Outcome(kind, start, time.monotonic() - start, error))
            await asyncio.sleep(self.pause)

    async def _send(
        self, client: httpx.AsyncClient, kind: str, product: str, headers: dict[str, str]
    ) -> httpx.Response:
        if kind == "read":
            body = {"query": READ, "variables": {"id": product}}
        elif kind == "page":
            body = {"query": PAGE}
        elif kind == "persisted":
            return await client.post("/graphql", json=persisted_hash(), headers=headers)
        else:
            variables = {"id": product, "name": f"Renamed {next(self._names)}"}
            body = {"query": WRITE, "variables": variables}
            headers = {**headers, "Idempotency-Key": str(uuid.uuid4())}
        return await client.post("/graphql", json=body, headers=headers)


def _failure(response: httpx.Response) -> str | None:
    if response.status_code != 200:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    body = response.json()
    if body.get("errors"):
        return f"errors: {json.dumps(body['errors'])[:200]}"
    return None


def _product_id(number: int) -> str:
    from schema.global_id import to_global_id

    return to_global_id("Product", number)


def persisted_hash() -> dict[str, Any]:
    return {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha256_hex(PERSISTED)}}}


async def register_persisted(client: httpx.AsyncClient) -> None:
    """Registers PERSISTED (APQ: the document with its hash), as Apollo's link does."""
    response = await client.post("/graphql", json={"query": PERSISTED, **persisted_hash()})
    response.raise_for_status()


@dataclass(frozen=True)
class Figures:
    sent: int
    failed: int
    p50_ms: float
    p99_ms: float
    errors: tuple[str, ...]  # the first few

    def line(self, label: str) -> str:
        return (
            f"{label}: sent={self.sent} failed={self.failed}"
            f" p50={self.p50_ms:.1f}ms p99={self.p99_ms:.1f}ms"
        )


def figures(outcomes: list[Outcome], start: float = 0.0, end: float = float("inf")) -> Figures:
    """The requests that began within [start, end)."""
    chosen = [o for o in outcomes if start <= o.start < end]
    millis = sorted(o.seconds * 1000 for o in chosen)
    cuts = statistics.quantiles(millis, n=100, method="inclusive") if len(millis) > 1 else millis
    failed = [f"{o.kind}: {o.error}" for o in chosen if o.error is not None]
    return Figures(
        sent=len(chosen),
        failed=len(failed),
        p50_ms=cuts[49] if len(cuts) > 1 else (cuts[0] if cuts else 0.0),
        p99_ms=cuts[98] if len(cuts) > 1 else (cuts[0] if cuts else 0.0),
        errors=tuple(failed[:5]),
    )


@dataclass(frozen=True)
class Restart:
    """One instance's restart: SIGTERM at `start`, back in HAProxy's rotation at `end`."""

    instance: str
    start: float
    end: float
    exit_status: int
    stopping: float  # seconds from SIGTERM to the exit
    starting: float  # seconds from the start to /readyz 200


def rolling_restart(cluster: Cluster, *, settle: float = 1.0) -> list[Restart]:
    """Each instance in turn: SIGTERM, wait for its exit, start it, wait until HAProxy has
    every instance up again, then `settle` seconds of plain load."""
    restarts = []
    for instance in cluster.instances:
        start = time.monotonic()
        status = instance.stop()
        stopped = time.monotonic()
        instance.start(timeout=STARTUP)
        ready = time.monotonic()
        cluster.haproxy.wait_until_up(len(cluster.instances), timeout=STARTUP)
        end = time.monotonic()
        restarts.append(
            Restart(instance.host.namespace, start, end, status, stopped - start, ready - stopped)
        )
        time.sleep(settle)
    return restarts


async def admin_tokens(database_url: str, count: int) -> list[str]:
    """`count` admin tokens of distinct users (each client its own rate-limit bucket)."""
    from resolvers.tokens import create_token
    from server.database import create_engine, create_sessionmaker
    from server.settings import Settings

    engine = create_engine(Settings.from_env({"DATABASE_URL": database_url}))
    try:
        sessionmaker = create_sessionmaker(engine)
        suffix = uuid.uuid4().hex[:8]
        return [
            (
                await create_token(
                    sessionmaker=sessionmaker, email=f"load-{i}-{suffix}@example.com", role="admin"
                )
            ).token
            for i in range(count)
        ]
    finally:
        await engine.dispose()


async def prepare(database_url: str) -> None:
    """Migrates the database and fills it with the `small` scale (emptied first)."""
    from server.cli.migrate import upgrade
    from server.cli.seed import seed
    from server.database import create_engine
    from server.settings import Settings

    await upgrade(database_url)
    engine = create_engine(Settings.from_env({"DATABASE_URL": database_url}))
    try:
        await seed(engine=engine, scale="small", reset=True)
    finally:
        await engine.dispose()


@contextlib.contextmanager
def pgbouncer(listen: str, database_url: str) -> Iterator[tuple[str, int, str]]:
    """A real PgBouncer from deploy/pgbouncer.ini (tests/pgbouncer_support.py), in
    transaction mode, listening on `listen` as well as on 127.0.0.1."""
    from tests.pgbouncer_support import pgbouncer_binary, running_pgbouncer

    if pgbouncer_binary() is None:
        raise Unavailable("not installed: pgbouncer (`make scaleout-deps`)")
    with running_pgbouncer(database_url, overrides={"listen_addr": f"127.0.0.1,{listen}"}) as pb:
        yield listen, pb.port, "pgbouncer"


@contextlib.contextmanager
def forwarder(listen: str, database_url: str) -> Iterator[tuple[str, int, str]]:
    """A plain TCP forwarder to PostgreSQL (no pooling)."""
    from bench.cluster import Forwarder

    url = make_url(database_url)
    with Forwarder(listen, (url.host or "127.0.0.1", url.port or 5432)) as front:
        yield front.address, front.port, "none"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3, help="rolling restarts in a row")
    parser.add_argument("--pause", type=float, default=2.0, help="seconds of load between them")
    parser.add_argument(
        "--client-pause", type=float, default=0.02, help="each client's pause between requests"
    )
    parser.add_argument(
        "--no-pgbouncer", action="store_true", help="a plain TCP forwarder to PostgreSQL instead"
    )
    args = parser.parse_args()
    front = forwarder if args.no_pgbouncer else pgbouncer

    asyncio.run(prepare(args.database_url))
    tokens = asyncio.run(admin_tokens(args.database_url, args.clients))
    try:
        with (
            cluster(args.database_url, front) as running,
            Load(running.url, tokens, pause=args.client_pause) as load,
        ):
            time.sleep(args.pause)
            restarts: list[Restart] = []
            for _ in range(args.rounds):
                restarts += rolling_restart(running, settle=args.pause)
            load.stop()
    except Unavailable as missing:
        raise SystemExit(f"cannot run: {missing}") from None
    print(f"database through {'a TCP forwarder' if args.no_pgbouncer else 'PgBouncer'}")
    print(figures(load.outcomes).line("whole run"))
    for restart in restarts:
        during = figures(load.outcomes, restart.start, restart.end)
        print(
            during.line(f"restart of {restart.instance} ({restart.end - restart.start:.1f} s)")
            + f" exit={restart.exit_status} stopping={restart.stopping:.1f}s"
            f" starting={restart.starting:.1f}s"
        )
    within = [o for o in load.outcomes if any(r.start <= o.start < r.end for r in restarts)]
    print(figures(within).line("all restarts"))
    for error in figures(load.outcomes).errors:
        print("  failed:", error)


if __name__ == "__main__":
    main()
