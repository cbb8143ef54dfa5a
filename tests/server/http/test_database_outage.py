"""A PostgreSQL outage under a real `storefront serve` process, through a proxy the test cuts.

During the outage, signed-in clients whose viewer the process knew are still
served public answers from the result cache (for AUTH_STALE_SECONDS), and
everything that needs the database is a JSON 503 SERVICE_UNAVAILABLE with
Retry-After: never a plain-text 500 or a dropped connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import pytest_asyncio
from sqlalchemy.engine import make_url

from resolvers.tokens import create_token, revoke_token
from tests.conftest import Database
from tests.factories import Factory
from tests.live_server import LiveServer, live_server
from tests.tcp_proxy import TcpProxy

PUBLIC = {"query": "{ products(first: 5) { nodes { name } } }"}
PRIVATE = {"query": "{ viewer { email } }"}
UNWARMED_PRIVATE = {"query": "{ viewer { name orderCount } }"}
AUTH_CACHE_SECONDS = 1
AUTH_STALE_SECONDS = 4


@pytest.fixture
def proxy(db: Database) -> Iterator[TcpProxy]:
    if db.backend != "postgresql":
        pytest.skip("an outage of a database server: PostgreSQL only")
    url = make_url(os.environ["TEST_DATABASE_URL"])
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        yield proxy


@pytest_asyncio.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    # One client: building one costs more than a request, and a burst must arrive at once.
    async with httpx.AsyncClient(timeout=15) as client:
        yield client


@contextlib.contextmanager
def _server(proxy: TcpProxy) -> Iterator[LiveServer]:
    url = make_url(os.environ["TEST_DATABASE_URL"]).set(host="127.0.0.1", port=proxy.port)
    env = {
        "DATABASE_URL": url.render_as_string(hide_password=False),
        "CACHE_ENABLED": "true",
        "AUTH_CACHE_SECONDS": str(AUTH_CACHE_SECONDS),
        "AUTH_STALE_SECONDS": str(AUTH_STALE_SECONDS),
    }
    with live_server(env) as server:
        yield server


def _unavailable(response: httpx.Response) -> bool:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["retry-after"] == "5"
    assert response.headers["x-request-id"]
    codes = {e["extensions"]["code"] for e in response.json()["errors"]}
    return codes == {"SERVICE_UNAVAILABLE"}


async def test_signed_in_clients_keep_public_answers_during_an_outage(
    db: Database, factory: Factory, proxy: TcpProxy, client: httpx.AsyncClient
) -> None:
    await factory.product(name="Lamp")
    await factory.user(email="ann@example.com")
    token = (await create_token(sessionmaker=db.sessionmaker, email="ann@example.com")).token
    with _server(proxy) as server:

        async def post(body: dict[str, str], token: str | None = None) -> httpx.Response:
            headers = {} if token is None else {"Authorization": f"Bearer {token}"}
            return await client.post(server.graphql, json=body, headers=headers)

        warm = await post(PUBLIC, token)
        viewer_lapses_at = time.monotonic() + AUTH_CACHE_SECONDS
        assert warm.status_code == 200
        assert warm.headers["x-cache"] == "MISS"
        assert (await post(PRIVATE, token)).status_code == 200

        proxy.cut()
        await asyncio.sleep(max(0.0, viewer_lapses_at - time.monotonic()) + 0.2)

        # A burst of signed-in public requests: every one answered from the cache.
        answers = await asyncio.gather(*(post(PUBLIC, token) for _ in range(40)))
        assert {a.status_code for a in answers} == {200}, server.output()
        assert {a.headers["x-cache"] for a in answers} == {"HIT"}
        assert answers[0].json()["data"] == warm.json()["data"]

        # What needs the database says so, as JSON, with Retry-After.
        assert _unavailable(await post(UNWARMED_PRIVATE, token))
        assert _unavailable(await post(PUBLIC, "sf_never-seen-before"))
        assert _unavailable(await post({"query": "{ categories { name } }"}))

        # The token is revoked meanwhile: trusted only while the database is away...
        await revoke_token(sessionmaker=db.sessionmaker, token_or_id=token)
        assert (await post(PUBLIC, token)).status_code == 200
        # ...and only for AUTH_STALE_SECONDS past its TTL.
        stale_until = viewer_lapses_at + AUTH_STALE_SECONDS
        await asyncio.sleep(max(0.0, stale_until - time.monotonic()) + 0.3)
        assert _unavailable(await post(PUBLIC, token))

        proxy.restore()
        deadline = time.monotonic() + 15
        while (response := await post(PUBLIC)).status_code != 200:
            assert time.monotonic() < deadline, response.text
            await asyncio.sleep(0.2)
        assert (await post(PUBLIC, token)).status_code == 401
        assert "Traceback" not in server.output()
