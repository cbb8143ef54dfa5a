"""`/livez`, `/readyz` and `/health` of a real `storefront serve` process (operations.md).

Each state a probe reports is produced for real: a database migrated to an older
revision, Redis and PostgreSQL behind a proxy the test cuts and restores, and a
server started while its database is unreachable.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy.engine import make_url

from server.cli.migrate import SCRIPT_LOCATION, upgrade
from tests.conftest import Database
from tests.live_server import LiveServer, live_server
from tests.tcp_proxy import TcpProxy

READY = {"status": "ok", "checks": {"database": "up", "migrations": "head"}}


def _get(server: LiveServer, path: str) -> httpx.Response:
    return httpx.get(f"{server.url}{path}", timeout=15)


def _eventually(server: LiveServer, path: str, status: int, timeout: float = 15) -> Any:
    deadline = time.monotonic() + timeout
    while (response := _get(server, path)).status_code != status:
        assert time.monotonic() < deadline, f"{path}: {response.status_code} {response.text}"
        time.sleep(0.2)
    return response.json()


def test_a_ready_server_answers_each_probe_unlogged(db: Database) -> None:
    with live_server({"DATABASE_URL": db.url, "LOG_LEVEL": "info"}) as server:
        live, ready, health = (_get(server, path) for path in ("/livez", "/readyz", "/health"))
        head = httpx.head(f"{server.url}/readyz", timeout=15)
        graphql = httpx.post(server.graphql, json={"query": "{ __typename }"}, timeout=15)
        # The request line is written once the answer has gone: wait for it.
        deadline = time.monotonic() + 10
        while "path=/graphql" not in (output := server.output()):
            assert time.monotonic() < deadline, output
            time.sleep(0.1)
        for path in ("/livez", "/readyz", "/health"):  # probes after it: no line either
            _get(server, path)
        output = server.output()

    assert (live.status_code, live.json()) == (200, {"status": "ok"})
    assert (ready.status_code, ready.json()) == (200, READY)
    assert (health.status_code, health.json()) == (200, {"status": "ok", "database": "up"})
    assert (head.status_code, head.content) == (200, b"")
    for probe in (live, ready, health):
        assert probe.headers["content-type"] == "application/json"
        assert probe.headers["cache-control"] == "no-store"
    # GraphQL requests get their log line; the probes (several a second here) get none.
    assert graphql.status_code == 200
    assert "path=/graphql" in output
    for path in ("/livez", "/readyz", "/health"):
        assert f"path={path}" not in output


def _previous_revision() -> str:
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory(str(SCRIPT_LOCATION))
    previous = scripts.get_revision(scripts.get_current_head()).down_revision
    assert isinstance(previous, str)
    return previous


@pytest.mark.parametrize("revision", ["previous", None], ids=["older", "never-migrated"])
async def test_a_database_behind_the_migrations_is_not_ready(
    tmp_path: Path, revision: str | None
) -> None:
    # SQLite only: reading the revision is the same statement on both backends, and an
    # older PostgreSQL schema would need a database of its own.
    path = tmp_path / "old.db"
    url = f"sqlite:///{path}"
    if revision is not None:
        await upgrade(url, _previous_revision())
    else:
        sqlite3.connect(path).close()
    with live_server({"DATABASE_URL": url}, ready_path="/livez") as server:
        ready, health = _get(server, "/readyz"), _get(server, "/health")
        assert ready.status_code == 503
        assert ready.json() == {
            "status": "unavailable",
            "checks": {"database": "up", "migrations": "behind"},
        }
        assert (health.status_code, health.json()) == (
            503,
            {"status": "unavailable", "database": "up"},
        )

        await upgrade(url, "head")
        assert _eventually(server, "/readyz", 200) == READY

        # A revision this release does not know (a newer release migrated): not "head".
        with sqlite3.connect(path) as connection:
            connection.execute("UPDATE alembic_version SET version_num = 'from_a_newer_release'")
        assert _eventually(server, "/readyz", 503)["checks"]["migrations"] == "unknown"


@pytest.fixture
def redis_proxy() -> Iterator[tuple[TcpProxy, str]]:
    url = os.environ.get("TEST_REDIS_URL")
    if not url:
        pytest.skip("TEST_REDIS_URL is not set: no Redis to take away")
    parts = urlsplit(url)
    with TcpProxy(parts.hostname or "127.0.0.1", parts.port or 6379) as proxy:
        yield proxy, f"redis://127.0.0.1:{proxy.port}{parts.path}"


def test_redis_down_is_named_and_its_return_noticed(
    db: Database, redis_proxy: tuple[TcpProxy, str]
) -> None:
    proxy, redis_url = redis_proxy
    with live_server({"DATABASE_URL": db.url, "REDIS_URL": redis_url}) as server:
        assert _get(server, "/readyz").json() == {
            "status": "ok",
            "checks": {"database": "up", "migrations": "head", "redis": "up"},
        }
        proxy.cut()
        down = _get(server, "/readyz")
        assert (down.status_code, down.json()) == (
            503,
            {
                "status": "unavailable",
                "checks": {"database": "up", "migrations": "head", "redis": "down"},
            },
        )
        assert _get(server, "/livez").status_code == 200  # liveness never asks Redis
        proxy.restore()
        assert _eventually(server, "/readyz", 200)["checks"]["redis"] == "up"


@pytest.fixture
def database_proxy(db: Database) -> Iterator[TcpProxy]:
    if db.backend != "postgresql":
        pytest.skip("an unreachable database server: PostgreSQL only")
    url = make_url(os.environ["TEST_DATABASE_URL"])
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        yield proxy


def test_serve_starts_without_its_database_and_is_ready_once_it_answers(
    database_proxy: TcpProxy,
) -> None:
    database_proxy.cut()  # the database is unreachable before the server starts
    url = make_url(os.environ["TEST_DATABASE_URL"]).set(host="127.0.0.1", port=database_proxy.port)
    env = {"DATABASE_URL": url.render_as_string(hide_password=False), "LOG_LEVEL": "info"}
    with live_server(env, ready_path="/livez") as server:
        assert _get(server, "/livez").json() == {"status": "ok"}
        for _ in range(5):
            ready = _get(server, "/readyz")
            assert (ready.status_code, ready.json()) == (
                503,
                {"status": "unavailable", "checks": {"database": "down", "migrations": "unknown"}},
            )
        health = _get(server, "/health")
        assert (health.status_code, health.json()) == (
            503,
            {"status": "unavailable", "database": "down"},
        )
        graphql = httpx.post(server.graphql, json={"query": "{ categories { name } }"}, timeout=15)
        assert graphql.status_code == 503
        assert graphql.headers["retry-after"]
        assert graphql.json()["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"

        database_proxy.restore()
        assert _eventually(server, "/readyz", 200) == READY
        assert _get(server, "/health").json() == {"status": "ok", "database": "up"}
        output = server.output()

    assert output.splitlines()[0].startswith("Warning: cannot connect to PostgreSQL at 127.0.0.1:")
    # Many failing probes, one line for the outage and one for its end; no traceback.
    readiness = [line for line in output.splitlines() if "logger=storefront.readiness" in line]
    assert len(readiness) == 2, readiness
    assert "not ready: database down (" in readiness[0]
    assert "ready again" in readiness[1]
    assert "Traceback" not in output
