"""`storefront serve --workers 2`: after a write, no worker answers the old value.

Real server processes over a real database. Every request goes over a fresh
connection, so the kernel hands them to either worker; /proc says which one
answered, so the warm-up is known to have reached both.
"""

from __future__ import annotations

from collections import Counter

import httpx
import pytest

from resolvers.tokens import create_token
from schema.global_id import to_global_id
from tests.cache_support import cache_env, clear_cache
from tests.conftest import Database
from tests.factories import Factory
from tests.live_server import LiveServer, live_server
from tests.redis_support import require_redis_url

WORKERS = 2
READ = "query Name($id: ID!) { product(id: $id) { name } }"
WRITE = """mutation Rename($id: ID!, $name: String!) {
  updateProduct(id: $id, input: {name: $name}) { name }
}"""
CHECKS = 40
MAX_WARMUP = 200
# Each worker imports the app anew: slow on a loaded machine.
STARTUP = 240


def _read(server: LiveServer, product: str) -> tuple[int, str, str | None]:
    """One read over a new connection: the worker that served it, the name, X-Cache."""
    with httpx.Client(timeout=15) as client:
        response = client.post(server.graphql, json={"query": READ, "variables": {"id": product}})
        assert response.status_code == 200, response.text
        body = response.json()
        assert "errors" not in body, body
        return (
            server.pid_serving(response),
            body["data"]["product"]["name"],
            (response.headers.get("x-cache")),
        )


def _warm_both_workers(server: LiveServer, product: str) -> Counter[str | None]:
    """Read until each worker answered twice (a second read is a hit if it caches)."""
    served: Counter[int] = Counter()
    caching: Counter[str | None] = Counter()
    for _ in range(MAX_WARMUP):
        pid, name, x_cache = _read(server, product)
        assert name == "Old name"
        served[pid] += 1
        caching[x_cache] += 1
        if len(served) == WORKERS and min(served.values()) >= 2:
            return caching
    pytest.fail(f"{MAX_WARMUP} fresh connections did not reach both workers: {served}")


def _write_then_check(server: LiveServer, product: str, admin: str) -> None:
    with httpx.Client(timeout=15) as client:
        response = client.post(
            server.graphql,
            json={"query": WRITE, "variables": {"id": product, "name": "New name"}},
            headers={"Authorization": f"Bearer {admin}"},
        )
    assert response.json()["data"] == {"updateProduct": {"name": "New name"}}, response.text

    answers = [_read(server, product) for _ in range(CHECKS)]
    assert len({pid for pid, _, _ in answers}) == WORKERS, "the checks reached one worker only"
    stale = [(pid, x_cache) for pid, name, x_cache in answers if name != "New name"]
    assert stale == [], f"{len(stale)} of {CHECKS} reads were stale"


async def _product_and_admin(db: Database, factory: Factory) -> tuple[str, str]:
    product = await factory.product(name="Old name")
    await factory.user(email="admin@example.com", role="admin")
    issued = await create_token(sessionmaker=db.sessionmaker, email="admin@example.com")
    return to_global_id("Product", product), issued.token


async def test_without_redis_the_caches_are_off_and_no_read_is_stale(
    db: Database, factory: Factory
) -> None:
    product, admin = await _product_and_admin(db, factory)
    env = cache_env("memory", DATABASE_URL=db.url)

    with live_server(env, args=("--workers", str(WORKERS)), timeout=STARTUP) as server:
        caching = _warm_both_workers(server, product)
        _write_then_check(server, product, admin)
        log = server.output()

    assert caching == Counter({None: sum(caching.values())}), "an answer came from a cache"
    # One line per worker says why, and how to turn the caches on.
    said = [line for line in log.splitlines() if "caches off" in line]
    assert len(said) == WORKERS, log
    assert all("Set REDIS_URL to turn them on" in line for line in said), said


async def test_with_redis_the_caches_stay_on_and_no_read_is_stale(
    db: Database, factory: Factory
) -> None:
    redis_url = require_redis_url()
    await clear_cache(redis_url)
    product, admin = await _product_and_admin(db, factory)
    env = cache_env("redis", redis_url, DATABASE_URL=db.url)

    try:
        with live_server(env, args=("--workers", str(WORKERS)), timeout=STARTUP) as server:
            caching = _warm_both_workers(server, product)
            _write_then_check(server, product, admin)
    finally:
        await clear_cache(redis_url)

    # One miss filled the shared cache; every other warm-up read was a hit.
    assert caching["MISS"] == 1, caching
    assert caching["HIT"] == sum(caching.values()) - 1, caching
