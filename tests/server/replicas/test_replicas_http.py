"""Read replicas through the real /graphql endpoint, over a real primary and streaming
replica made by the test (tests/replication.py).

Where a read ran is counted on each server (pg_stat_statements: statements reading
`products`), and with replay paused the two servers hold different data, so an
answer itself says which one it came from.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from asgi_lifespan import LifespanManager

from resolvers.tokens import create_token
from server.app import create_app
from server.cli.migrate import upgrade
from server.database import create_engine, create_sessionmaker
from server.replicas.read_after import READ_AFTER_COOKIE, READ_AFTER_HEADER
from server.settings import Settings
from tests.factories import Factory
from tests.replication import Cluster, caught_up, product_reads, replicated_pair

SKU = "RYW-1"
BY_SKU = "query($sku: String) { product(sku: $sku) { name } }"
RENAME = (
    "mutation($id: ID!, $name: String) { updateProduct(id: $id, input: {name: $name}) { name } }"
)


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[Cluster, Cluster]]:
    with replicated_pair() as clusters:
        yield clusters


@pytest_asyncio.fixture(scope="module")
async def seeded(pair: tuple[Cluster, Cluster]) -> dict[str, Any]:
    """The schema and one product on the primary, an admin token; replayed on the replica."""
    primary, replica = pair
    await upgrade(primary.url)
    engine = create_engine(Settings.from_env({"DATABASE_URL": primary.url}))
    try:
        product_id = await Factory(create_sessionmaker(engine)).product(sku=SKU, name="first")
        issued = await create_token(
            sessionmaker=create_sessionmaker(engine), email="admin@example.com", role="admin"
        )
    finally:
        await engine.dispose()
    await until(lambda: caught_up(primary, replica), "the replica replaying the seed")
    global_id = base64.b64encode(f"Product:{product_id}".encode()).decode()
    return {"id": global_id, "token": issued.token}


@contextlib.asynccontextmanager
async def app_over(primary: Cluster, replica_urls: str, **env: str) -> AsyncIterator[Any]:
    settings = Settings.from_env(
        {
            "DATABASE_URL": primary.url,
            "DATABASE_REPLICA_URLS": replica_urls,
            "GC_TUNING": "false",
            "GRAPHQL_EXECUTION": "compare",
            "RATE_LIMIT_ENABLED": "false",
            **env,
        }
    )
    app = create_app(settings)
    async with LifespanManager(app) as manager:
        yield manager.app


def client_of(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def until(condition: Callable[[], bool], what: str, seconds: float = 20.0) -> None:
    """Polls `condition()` (in a thread: the app's background checks go on) for `seconds`."""

    async def check() -> bool:
        return await asyncio.to_thread(condition)

    await until_async(check, what, seconds)


async def until_async(
    condition: Callable[[], Awaitable[bool]], what: str, seconds: float = 20.0
) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await condition():
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"{what}: not within {seconds} s")


async def name_of(client: httpx.AsyncClient, headers: dict[str, str] | None = None) -> str:
    response = await client.post(
        "/graphql", json={"query": BY_SKU, "variables": {"sku": SKU}}, headers=headers or {}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    name: str = body["data"]["product"]["name"]
    return name


async def rename(client: httpx.AsyncClient, seeded: dict[str, Any], name: str) -> httpx.Response:
    response = await client.post(
        "/graphql",
        json={"query": RENAME, "variables": {"id": seeded["id"], "name": name}},
        headers={"Authorization": f"Bearer {seeded['token']}"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["data"]["updateProduct"]["name"] == name
    return response


@contextlib.contextmanager
def replay_paused(replica: Cluster) -> Iterator[None]:
    replica.sql("SELECT pg_wal_replay_pause()")
    try:
        yield
    finally:
        replica.sql("SELECT pg_wal_replay_resume()")


async def test_reads_land_on_the_replica(
    pair: tuple[Cluster, Cluster], seeded: dict[str, Any]
) -> None:
    primary, replica = pair
    async with app_over(primary, replica.url, CACHE_ENABLED="false") as app:
        before = (product_reads(primary), product_reads(replica))
        async with client_of(app) as client:
            for _ in range(10):
                assert await name_of(client)
        after = (product_reads(primary), product_reads(replica))
    assert after[1] - before[1] >= 10, (before, after)
    assert after[0] == before[0], (before, after)


async def test_the_writer_reads_its_write_while_replay_is_paused(
    pair: tuple[Cluster, Cluster], seeded: dict[str, Any]
) -> None:
    primary, replica = pair
    # The result cache is on: an old answer another client had cached must not reach
    # the writer either.
    env = {"REPLICA_MAX_LAG_SECONDS": "60"}
    async with (
        app_over(primary, replica.url, **env) as app,
        client_of(app) as writer,
        client_of(app) as other,
    ):
        old = await name_of(other)
        with replay_paused(replica):
            response = await rename(writer, seeded, old + "+")
            token = response.headers[READ_AFTER_HEADER]
            assert f"{READ_AFTER_COOKIE}={token}" in response.headers["set-cookie"]
            assert "HttpOnly" in response.headers["set-cookie"]
            primary_reads = product_reads(primary)
            # The writer (its cookie) reads its write from the primary ...
            assert await name_of(writer) == old + "+"
            assert product_reads(primary) > primary_reads
            # ... and so does a client sending the header instead.
            async with client_of(app) as by_header:
                assert await name_of(by_header, {READ_AFTER_HEADER: token}) == old + "+"
            # A client that did not write reads the replica, still before the write.
            replica_reads = product_reads(replica)
            assert await name_of(other, {"Cache-Control": "no-cache"}) == old
            assert product_reads(replica) > replica_reads
            # The writer again, after that old answer was cached: still its write.
            assert await name_of(writer) == old + "+"
        await until(lambda: caught_up(primary, replica), "replay resumed")
        # Once replayed, the writer reads the replica again; the old cached answer
        # is invalidated a second time, so the other client sees the write too.
        await until_async(lambda: _reads_replica(replica, writer), "the writer on the replica")
        await until_async(lambda: _named(other, old + "+"), "the other client seeing the write")


async def test_a_batch_reads_the_write_it_made(
    pair: tuple[Cluster, Cluster], seeded: dict[str, Any]
) -> None:
    primary, replica = pair
    env = {"REPLICA_MAX_LAG_SECONDS": "60"}
    async with app_over(primary, replica.url, **env) as app, client_of(app) as client:
        old = await name_of(client)
        with replay_paused(replica):
            response = await client.post(
                "/graphql",
                json=[
                    {"query": RENAME, "variables": {"id": seeded["id"], "name": old + "b"}},
                    {"query": BY_SKU, "variables": {"sku": SKU}},
                ],
                headers={"Authorization": f"Bearer {seeded['token']}"},
            )
            assert response.status_code == 200, response.text
            written, read = response.json()
            assert written["data"]["updateProduct"]["name"] == old + "b"
            assert read["data"]["product"]["name"] == old + "b"
        await until(lambda: caught_up(primary, replica), "replay resumed")


async def test_a_lagging_replica_is_skipped(
    pair: tuple[Cluster, Cluster], seeded: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    primary, replica = pair
    env = {"REPLICA_MAX_LAG_SECONDS": "1", "CACHE_ENABLED": "false"}
    async with app_over(primary, replica.url, **env) as app, client_of(app) as client:
        assert await _reads_replica(replica, client)
        with caplog.at_level(logging.WARNING, logger="storefront.replicas"), replay_paused(replica):
            primary.sql("CREATE TABLE IF NOT EXISTS lag_marker (n int)")
            primary.sql("INSERT INTO lag_marker VALUES (1)")  # WAL the replica does not replay
            await until_async(lambda: _reads_primary(primary, replica, client), "skipped")
            assert any("REPLICA_MAX_LAG_SECONDS=1" in r.getMessage() for r in caplog.records)
            # Every read of a client that never wrote now goes to the primary.
            replica_reads = product_reads(replica)
            for _ in range(5):
                await name_of(client)
            assert product_reads(replica) == replica_reads
        await until_async(lambda: _reads_replica(replica, client), "back in use")


async def test_a_stopped_replica_falls_back_to_the_primary(
    pair: tuple[Cluster, Cluster], seeded: dict[str, Any]
) -> None:
    primary, replica = pair
    # Compiled only: the two executors word a failed replica read differently, and that
    # attempt is thrown away (run again on the primary), so comparing it means nothing.
    env = {"CACHE_ENABLED": "false", "GRAPHQL_EXECUTION": "compiled"}
    async with app_over(primary, replica.url, **env) as app, client_of(app) as client:
        # Warm: the replica's pool holds open connections, which the stop breaks.
        await asyncio.gather(*(name_of(client) for _ in range(8)))
        try:
            replica.stop()
            primary_reads = product_reads(primary)
            for _ in range(3):  # every one answered: none failed
                names = await asyncio.gather(*(name_of(client) for _ in range(8)))
                assert all(names)
            assert product_reads(primary) - primary_reads >= 24
        finally:
            replica.start()
        await until_async(lambda: _reads_replica(replica, client), "the restarted replica")


async def test_a_primary_given_as_replica_is_refused(
    pair: tuple[Cluster, Cluster], seeded: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    primary, _ = pair
    with caplog.at_level(logging.WARNING, logger="storefront.replicas"):
        async with app_over(primary, primary.url, CACHE_ENABLED="false") as app:
            [warning] = [r for r in caplog.records if r.name == "storefront.replicas"]
            assert "is refused" in warning.getMessage()
            assert "pg_is_in_recovery() is false" in warning.getMessage()
            assert warning.levelno == logging.WARNING
            async with client_of(app) as client:
                assert await name_of(client)  # served by the primary, as without replicas


async def _reads_replica(replica: Cluster, client: httpx.AsyncClient) -> bool:
    before = product_reads(replica)
    await name_of(client)
    return product_reads(replica) > before


async def _reads_primary(primary: Cluster, replica: Cluster, client: httpx.AsyncClient) -> bool:
    before = product_reads(primary), product_reads(replica)
    await name_of(client)
    return product_reads(primary) > before[0] and product_reads(replica) == before[1]


async def _named(client: httpx.AsyncClient, name: str) -> bool:
    return await name_of(client) == name
