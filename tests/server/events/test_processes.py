"""Events that are never lost, with real processes: `storefront serve` and `storefront
worker` over the test database and a PRIVATE redis-server on a free port (the test
stops and restarts it; the machine's shared Redis is never touched).

- An API process dies right after its commit (FAULT_KILL_AFTER_COMMIT: it SIGKILLs
  itself between the commit and its in-process publish): the event was committed
  with the write, a worker publishes it, and another instance's cached answer is
  invalidated.
- Redis stops for 10 s under writes: the outbox grows, then drains, and every event
  reaches a subscriber of the events channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import func, select

from models import OutboxEvent
from resolvers.tokens import create_token
from schema.global_id import to_global_id
from server.events.messages import decode
from tests.cache_support import RedisProcess, redis_process
from tests.conftest import Database
from tests.factories import Factory
from tests.live_server import ROOT, live_server

NAME = "query($id: ID!) { node(id: $id) { ... on Product { name } } }"
RENAME = "mutation($id: ID!) { updateProduct(id: $id, input: {name: $name}) { id } }"
PLACE = "mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { id } }"


@contextlib.contextmanager
def worker(env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """`storefront worker` with `env` added; SIGTERM at the end (exit status checked by
    the tests that care), killed if it does not stop."""
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "worker"],
        env={**os.environ, "LOG_LEVEL": "info", **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGCONT)
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        log.seek(0)
        print("worker's log:", log.read().decode(errors="replace"))  # shown on failure
        log.close()


async def until(check: Callable[[], Awaitable[bool]], *, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within} s: {what}")
        await asyncio.sleep(0.05)


async def unpublished(db: Database) -> int:
    async with db.sessionmaker() as session:
        count = await session.scalar(select(func.count()).where(OutboxEvent.published_at.is_(None)))
        return int(count or 0)


async def all_event_ids(db: Database) -> list[str]:
    async with db.sessionmaker() as session:
        return list(await session.scalars(select(OutboxEvent.event_id).order_by(OutboxEvent.id)))


@pytest_asyncio.fixture
async def own_redis(tmp_path: Path) -> AsyncIterator[RedisProcess]:
    async with redis_process(tmp_path) as server:
        yield server


def server_env(db: Database, redis: RedisProcess, **extra: str) -> dict[str, str]:
    return {
        "DATABASE_URL": db.url,
        "REDIS_URL": redis.url,
        "EVENTS_RELAY": "worker",
        "RATE_LIMIT_ENABLED": "false",
        "EVENTS_POLL_INTERVAL_MS": "200",
        **extra,
    }


async def test_an_api_process_killed_after_its_commit_loses_no_event(
    db: Database, factory: Factory, own_redis: RedisProcess
) -> None:
    product = to_global_id("Product", await factory.product(name="Lamp"))
    admin = (await create_token(sessionmaker=db.sessionmaker, email="a@x.com", role="admin")).token
    auth = {"Authorization": f"Bearer {admin}"}
    env = server_env(db, own_redis, CACHE_ENABLED="true")
    rename = RENAME.replace("$id: ID!)", "$id: ID!, $name: String!)")

    with (
        live_server(env, timeout=180) as reader,
        live_server({**env, "FAULT_KILL_AFTER_COMMIT": "true"}, timeout=180) as writer,
    ):
        async with httpx.AsyncClient(timeout=30) as client:

            async def name() -> tuple[str, str]:
                response = await client.post(
                    reader.graphql, json={"query": NAME, "variables": {"id": product}}
                )
                return response.json()["data"]["node"]["name"], response.headers["x-cache"]

            await name()
            assert await name() == ("Lamp", "HIT")

            with pytest.raises(httpx.TransportError):  # it died before answering
                await client.post(
                    writer.graphql,
                    json={"query": rename, "variables": {"id": product, "name": "Lamp II"}},
                    headers=auth,
                )
            assert writer.process.wait(timeout=10) == -signal.SIGKILL
            assert await unpublished(db) == 1  # committed with the write
            assert await name() == ("Lamp", "HIT")  # nobody announced it

            with worker(env) as relay:

                async def renamed() -> bool:
                    return (await name())[0] == "Lamp II"

                try:
                    await until(renamed, within=90, what="the reader sees the new name")
                except AssertionError:
                    print("reader's log:", reader.output())
                    raise
                await until(lambda: _zero(db), within=30, what="the outbox is drained")
                relay.terminate()
                assert relay.wait(timeout=15) == 0  # SIGTERM stops it cleanly


async def _zero(db: Database) -> bool:
    return await unpublished(db) == 0


class Listener:
    """A subscriber of the events channel that resubscribes after Redis comes back."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.received: list[str] = []
        self.subscribed = asyncio.Event()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            client = Redis.from_url(self.url, socket_connect_timeout=0.5)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe("storefront:0:events")
                self.subscribed.set()
                while True:
                    message = await pubsub.get_message(timeout=0.5)
                    if message is not None:
                        self.received.append(decode(message["data"]).event_id)
            except (RedisError, OSError):
                self.subscribed.clear()
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
                with contextlib.suppress(RedisError, OSError):
                    await client.aclose()
            await asyncio.sleep(0.02)

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def test_redis_down_for_ten_seconds_under_writes_loses_no_event(
    db: Database, factory: Factory, own_redis: RedisProcess
) -> None:
    lamp = to_global_id("Product", await factory.product(name="Lamp", price_cents=100))
    customer = (await create_token(sessionmaker=db.sessionmaker, email="c@x.com")).token
    env = server_env(db, own_redis, CACHE_ENABLED="false")
    listener = Listener(own_redis.url)
    placed: list[str] = []
    try:
        await asyncio.wait_for(listener.subscribed.wait(), timeout=10)
        with live_server(env, timeout=180) as server, worker(env) as relay:
            async with httpx.AsyncClient(timeout=30) as client:
                writing = True

                async def write() -> None:
                    variables = {"input": {"lines": [{"productId": lamp, "quantity": 1}]}}
                    while writing:
                        response = await client.post(
                            server.graphql,
                            json={"query": PLACE, "variables": variables},
                            headers={"Authorization": f"Bearer {customer}"},
                        )
                        body = response.json()
                        assert "errors" not in body, body
                        placed.append(body["data"]["placeOrder"]["id"])
                        await asyncio.sleep(0.05)

                writer = asyncio.create_task(write())
                await asyncio.sleep(1.5)
                await own_redis.stop()
                await asyncio.sleep(3)
                early = await unpublished(db)
                await asyncio.sleep(7)
                late = await unpublished(db)
                assert 0 < early < late  # the outbox grows while Redis is down

                # Back: the worker waits (SIGSTOP) until the listener is subscribed again,
                # so what it publishes next cannot slip past it.
                relay.send_signal(signal.SIGSTOP)
                await own_redis.start()
                await asyncio.wait_for(listener.subscribed.wait(), timeout=10)
                relay.send_signal(signal.SIGCONT)
                await asyncio.sleep(1)
                writing = False
                await writer
                await until(lambda: _zero(db), within=90, what="the outbox drains")
                ids = await all_event_ids(db)
                await until(
                    lambda: _has(listener, ids), within=30, what="every event reached Redis"
                )
    finally:
        await listener.close()

    assert len(ids) == len(placed) == len(set(ids))  # one event per committed write
    assert set(listener.received) == set(ids)


async def _has(listener: Listener, ids: list[str]) -> bool:
    return set(ids) <= set(listener.received)
