"""A PostgreSQL outage under a real `storefront serve` process, through a proxy the test cuts.

During the outage, signed-in clients whose viewer the process knew are still
served public answers from the result cache (for AUTH_STALE_SECONDS), and
everything that needs the database is a JSON 503 SERVICE_UNAVAILABLE with
Retry-After: never a plain-text 500 or a dropped connection.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
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


@contextlib.contextmanager
def _server(proxy: TcpProxy) -> Iterator[LiveServer]:
    url = make_url(os.environ["TEST_DATABASE_URL"]).set(host="127.0.0.1", port=proxy.port)
    env = {
        "DATABASE_URL": url.render_as_string(hide_password=False),
        "CACHE_ENABLED": "true",
        "AUTH_CACHE_SECONDS": str(AUTH_CACHE_SECONDS),
        "AUTH_STALE_SECONDS": str(AUTH_STALE_SECONDS),
        "DB_POOL_TIMEOUT": "2",
    }
    with live_server(env) as server:
        yield server


def _post(server: LiveServer, body: dict[str, str], token: str | None = None) -> httpx.Response:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return _CLIENT.post(server.graphql, json=body, headers=headers)


# One client for the module (thread-safe): building one costs more than a request.
_CLIENT = httpx.Client(timeout=15)


def _assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["retry-after"] == "5"
    assert response.headers["x-request-id"]
    codes = {e["extensions"]["code"] for e in response.json()["errors"]}
    assert codes == {"SERVICE_UNAVAILABLE"}


async def test_signed_in_clients_keep_public_answers_during_an_outage(
    db: Database, factory: Factory, proxy: TcpProxy
) -> None:
    await factory.product(name="Lamp")
    await factory.user(email="ann@example.com")
    issued = await create_token(sessionmaker=db.sessionmaker, email="ann@example.com")
    token = issued.token
    with _server(proxy) as server:
        warm = _post(server, PUBLIC, token)
        viewer_lapses_at = time.monotonic() + AUTH_CACHE_SECONDS
        assert warm.status_code == 200 and warm.headers["x-cache"] == "MISS"
        assert _post(server, PRIVATE, token).status_code == 200

        proxy.cut()
        time.sleep(max(0.0, viewer_lapses_at - time.monotonic()) + 0.2)  # past its TTL now

        # Under load, every signed-in public request is answered from the cache.
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: _post(server, PUBLIC, token), range(40)))
        assert {a.status_code for a in answers} == {200}, server.output()
        assert {a.headers["x-cache"] for a in answers} == {"HIT"}
        assert answers[0].json()["data"] == warm.json()["data"]

        # What needs the database says so, as JSON, with Retry-After.
        _assert_unavailable(_post(server, UNWARMED_PRIVATE, token))
        _assert_unavailable(_post(server, PUBLIC, "sf_never-seen-before"))
        _assert_unavailable(_post(server, {"query": "{ categories { name } }"}))

        # The token is revoked meanwhile: trusted only while the database is away...
        await revoke_token(sessionmaker=db.sessionmaker, token_or_id=token)
        assert _post(server, PUBLIC, token).status_code == 200
        # ...and only for AUTH_STALE_SECONDS past its TTL.
        time.sleep(max(0.0, viewer_lapses_at + AUTH_STALE_SECONDS - time.monotonic()) + 0.3)
        _assert_unavailable(_post(server, PUBLIC, token))

        proxy.restore()
        deadline = time.monotonic() + 15
        while (response := _post(server, PUBLIC)).status_code != 200:
            assert time.monotonic() < deadline, response.text
            time.sleep(0.2)
        revoked = _post(server, PUBLIC, token)
        assert revoked.status_code == 401
        assert "Traceback" not in server.output()
