"""Two hosts behind a real HAProxy: shared state, and a rolling restart with no failed request.

Two `storefront serve` processes, each in a network namespace of its own (a
veth pair to the root namespace: a host of its own, reached at its own
address), share a private `redis-server`, and PostgreSQL through a real
PgBouncer in transaction mode (from deploy/pgbouncer.ini, `DB_POOLER=pgbouncer`),
behind HAProxy run from deploy/haproxy.cfg (bench/cluster.py,
bench/rolling_restart.py).

First, talking to each instance directly: an APQ hash registered through one
is served by the other, an answer cached by one is a hit on the other, and one
client's rate-limit budget spent on one is missing on the other. Then, under
steady load through HAProxy (reads, persisted reads, writes with an
Idempotency-Key), each instance in turn gets SIGTERM, exits, starts again and
rejoins: not one request fails. The figures are printed (`-s` shows them).

Without root, `ip netns`, haproxy, pgbouncer or redis-server the test skips saying which;
under CI it fails instead. PostgreSQL only (the hosts share one database server).
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest

from bench.cluster import Instance, Unavailable
from bench.rolling_restart import (
    Cluster,
    Load,
    admin_tokens,
    cluster,
    figures,
    pgbouncer,
    rolling_restart,
)
from resolvers.tokens import create_token
from server.cli.seed import seed
from server.persisted.protocol import sha256_hex
from tests.conftest import Database

pytestmark = pytest.mark.parametrize("database", ["postgresql"], indirect=True)

CLIENTS = 4
CLIENT_PAUSE = 0.05  # steady load, not saturation: the machine has to start servers meanwhile
# Customers' buckets (the load's clients are admins, with buckets of their own):
# slow to refill, so what one instance spent is still missing on the other.
MAXIMUM, RESTORE = 2000, 10.0
EXPENSIVE = "query Expensive { products(first: 100) { nodes { id } } }"


@dataclass
class Seeded:
    database_url: str
    admin_tokens: list[str]
    customer_token: str


@pytest.fixture
async def seeded(db: Database) -> AsyncIterator[Seeded]:
    await seed(engine=db.engine, scale="small", reset=True)
    issued = await create_token(sessionmaker=db.sessionmaker, email="limited@example.com")
    yield Seeded(db.url, await admin_tokens(db.url, CLIENTS), issued.token)
    await db.truncate()


@pytest.fixture
def hosts(seeded: Seeded) -> Iterator[Cluster]:
    extra = {"RATE_LIMIT_MAXIMUM": str(MAXIMUM), "RATE_LIMIT_RESTORE_RATE": str(RESTORE)}
    try:
        with cluster(seeded.database_url, pgbouncer, extra_env=extra) as running:
            yield running
    except Unavailable as missing:
        message = f"several hosts cannot be run here: {missing}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def _post(instance: Instance, body: dict[str, object], token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.post(f"{instance.url}/graphql", json=body, headers=headers, timeout=30)


def _hashed(query: str) -> dict[str, object]:
    return {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha256_hex(query)}}}


def _apq_is_shared(a: Instance, b: Instance, query: str) -> None:
    unknown = _post(b, _hashed(query)).json()
    assert unknown["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND", unknown
    registered = _post(a, {"query": query, **_hashed(query)})
    assert registered.status_code == 200, registered.text
    assert "errors" not in registered.json(), registered.text
    found = _post(b, _hashed(query))
    assert found.json()["data"] == registered.json()["data"], found.text


def _cache_is_shared(a: Instance, b: Instance, query: str) -> None:
    first, second = _post(a, {"query": query}), _post(b, {"query": query})
    assert first.headers.get("x-cache") == "MISS", first.headers
    assert second.headers.get("x-cache") == "HIT", second.headers
    assert second.json()["data"] == first.json()["data"]


def _rate_limit_is_shared(a: Instance, b: Instance, token: str) -> None:
    """Spends 60% of a customer's bucket on A, then asks B for as much as a full
    bucket of its own would surely admit: B must refuse some of it."""
    answer = _post(a, {"query": EXPENSIVE}, token).json()
    cost = answer["extensions"]["cost"]["actualQueryCost"]
    assert cost >= 50, answer["extensions"]  # else the bucket is too big for this check
    started = time.monotonic()
    spent_on_a = [_post(a, {"query": EXPENSIVE}, token) for _ in range(MAXIMUM * 6 // 10 // cost)]
    assert all(r.status_code == 200 for r in spent_on_a), [r.text for r in spent_on_a]
    on_b = [_post(b, {"query": EXPENSIVE}, token) for _ in range(MAXIMUM // cost - 1)]
    elapsed = time.monotonic() - started
    refused = [r for r in on_b if r.status_code == 429]
    assert refused, "B admitted what a bucket of its own would: the budget is not shared"
    assert refused[0].json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    # Admitted on both: at most one bucket, its refill and two leases' spare (README).
    admitted = 1 + len(spent_on_a) + len(on_b) - len(refused)
    spare = int(0.02 * MAXIMUM)
    assert admitted * cost <= MAXIMUM + RESTORE * elapsed + 2 * spare + cost, (admitted, cost)


def test_state_is_shared_and_a_rolling_restart_fails_no_request(
    hosts: Cluster, seeded: Seeded
) -> None:
    a, b = hosts.instances
    run = secrets.token_hex(4)
    persisted = f"query Persisted{run} {{ products(first: 3) {{ nodes {{ id name }} }} }}"
    cached = f"query Cached{run} {{ categories {{ name }} }}"  # no write of the load drops it
    _apq_is_shared(a, b, persisted)
    _cache_is_shared(a, b, cached)
    _rate_limit_is_shared(a, b, seeded.customer_token)

    with Load(hosts.url, seeded.admin_tokens, pause=CLIENT_PAUSE) as load:
        time.sleep(1)
        restarts = rolling_restart(hosts, settle=1)
        load.stop()

    whole = figures(load.outcomes)
    print("\n" + whole.line("rolling restart, whole run"))
    for restart in restarts:
        during = figures(load.outcomes, restart.start, restart.end)
        print(
            during.line(f"  restart of {restart.instance}")
            + f" (SIGTERM to back in rotation {restart.end - restart.start:.1f} s: stopping"
            f" {restart.stopping:.1f} s, starting {restart.starting:.1f} s;"
            f" exit status {restart.exit_status})"
        )
        assert restart.exit_status == 0
        assert during.sent > 0, "no request was sent while an instance restarted"
    servers = {r["svname"]: r for r in hosts.haproxy.stats() if r["type"] == "2"}
    backend = next(r for r in hosts.haproxy.stats() if r["type"] == "1")
    print(
        "  HAProxy: "
        + ", ".join(f"{name} served {row['stot']}" for name, row in servers.items())
        + f"; retries {backend['wretr']}, redispatches {backend['wredis']}"
    )
    assert whole.failed == 0, whole.errors
    assert all(int(row["stot"]) > 0 for row in servers.values()), servers
    assert {o.kind for o in load.outcomes} == {"read", "page", "persisted", "write"}

    # Both restarted processes still see what the others stored in Redis.
    assert _post(b, _hashed(persisted)).json()["data"]["products"]["nodes"]
    assert _post(a, {"query": cached}).headers.get("x-cache") == "HIT"
