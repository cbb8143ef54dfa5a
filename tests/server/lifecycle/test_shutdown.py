"""Graceful shutdown of a real `storefront serve` process (operations.md, "Shutdown").

Requests are made slow honestly: the server reaches PostgreSQL through a proxy
that holds each of the database's answers for SLOW seconds. While they are in
flight the test sends SIGTERM and checks, over new connections, that readiness
dropped at once while liveness and GraphQL are still answered for the grace;
then that every request in flight got its whole answer, though it outlived the
grace, and that the process exited with status 0.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import Database
from tests.factories import Factory
from tests.live_server import LiveServer, live_server
from tests.tcp_proxy import TcpProxy

GRACE = 2  # SHUTDOWN_GRACE_SECONDS
SLOW = 3.0  # seconds the database holds each answer once requests are in flight (> GRACE)
PRODUCTS = {"query": "{ products(first: 5) { nodes { name } } }"}
IN_FLIGHT = 6


@pytest.fixture
def proxy(db: Database) -> Iterator[TcpProxy]:
    if db.backend != "postgresql":
        pytest.skip("a database made slow through a proxy: PostgreSQL only")
    url = make_url(os.environ["TEST_DATABASE_URL"])
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        yield proxy


async def _fresh(server: LiveServer, method: str, path: str, **kw: object) -> httpx.Response:
    """A request on a connection of its own: new connections are what the grace is for."""
    async with httpx.AsyncClient(timeout=60) as client:
        return await client.request(method, f"{server.url}{path}", **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("workers", [1, 2])
async def test_sigterm_drains_then_finishes_requests_in_flight(
    db: Database, factory: Factory, proxy: TcpProxy, workers: int
) -> None:
    await factory.product(name="Lamp")
    url = make_url(os.environ["TEST_DATABASE_URL"]).set(host="127.0.0.1", port=proxy.port)
    env = {
        "DATABASE_URL": url.render_as_string(hide_password=False),
        "SHUTDOWN_GRACE_SECONDS": str(GRACE),
        # A probe that reaches a worker not yet told to drain asks the slowed database.
        "READINESS_TIMEOUT_MS": "200",
        "EXECUTION_TIMEOUT_MS": "0",  # slow on purpose: no request times out
        "LOG_LEVEL": "info",
    }
    args = ("--workers", str(workers)) if workers > 1 else ()
    with live_server(env, args=args) as server:
        # Each process opens pooled connections while the database is fast; a request
        # that still needs a new one is not slowed (see TcpProxy.slow_down).
        for _ in range(4):
            warm = await asyncio.gather(
                *(_fresh(server, "POST", "/graphql", json=PRODUCTS) for _ in range(2 * IN_FLIGHT))
            )
            assert {response.status_code for response in warm} == {200}
        proxy.slow_down(SLOW)
        in_flight = [
            asyncio.create_task(_fresh(server, "POST", "/graphql", json=PRODUCTS))
            for _ in range(IN_FLIGHT)
        ]
        await asyncio.sleep(0.5)
        assert not all(task.done() for task in in_flight)

        server.process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        # At once (under --workers, once the supervisor has forwarded it: within 0.5 s).
        draining = {"status": "unavailable", "checks": {"shutdown": "begun"}}
        while (ready := await _fresh(server, "GET", "/readyz")).json() != draining:
            assert time.monotonic() - signalled < 1.0, ready.text
            await asyncio.sleep(0.05)
        assert ready.status_code == 503
        for _ in range(2 * workers):  # every worker is draining
            assert (await _fresh(server, "GET", "/readyz")).json() == draining
            health = await _fresh(server, "GET", "/health")
            assert (health.status_code, health.json()["status"]) == (503, "unavailable")

        # During the grace, new connections are still served.
        live = await _fresh(server, "GET", "/livez")
        typename = await _fresh(server, "POST", "/graphql", json={"query": "{ __typename }"})
        assert time.monotonic() - signalled < GRACE
        assert (live.status_code, live.json()) == (200, {"status": "ok"})
        assert (typename.status_code, typename.json()["data"]) == (200, {"__typename": "Query"})

        answers = await asyncio.gather(*in_flight)
        finished = time.monotonic()
        exit_status = await asyncio.to_thread(server.process.wait, 60)
        output = server.output()

    assert finished - signalled > GRACE, "the requests in flight did not outlive the grace"
    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert answer.json()["data"] == {"products": {"nodes": [{"name": "Lamp"}]}}
    assert exit_status == 0, output
    assert "Traceback" not in output
    assert "timeout graceful shutdown exceeded" not in output
