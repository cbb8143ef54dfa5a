"""`storefront serve --workers 2`: whichever worker answers `/metrics` counts both.

A real server process over a SQLite file. Every request goes over a fresh
connection, so the kernel hands them to either worker; /proc says which one
answered, so both are known to have served requests and scrapes.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import httpx
import pytest

from server.cli.migrate import upgrade
from server.observability.metrics import MULTIPROC_DIR_VARIABLE
from tests.live_server import LiveServer, live_server
from tests.server.observability.metrics_scrape import Scrape

WORKERS = 2
STARTUP = 240  # each worker imports the app anew: slow on a loaded machine
MAX_TRIES = 200
QUERY = "query Catalog { categories { name } }"


@pytest.fixture
async def database_url(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'workers.db'}"
    await upgrade(url)
    return url


def _fresh(server: LiveServer, method: str, path: str, **kw: object) -> tuple[int, httpx.Response]:
    """One request over a new connection, and the worker that answered it."""
    with httpx.Client(timeout=15) as client:
        response = client.request(method, f"{server.url}{path}", **kw)  # type: ignore[arg-type]
        return server.pid_serving(response), response


def _multiproc_dir(server: LiveServer) -> Path:
    prefix = MULTIPROC_DIR_VARIABLE.encode() + b"="
    workers = [pid for pid in server.pids() if pid != server.process.pid]
    for pid in workers:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        for entry in environ:
            if entry.startswith(prefix):
                return Path(entry[len(prefix) :].decode())
    pytest.fail("no worker has PROMETHEUS_MULTIPROC_DIR")


def test_metrics_of_every_worker_add_up(database_url: str) -> None:
    env = {"DATABASE_URL": database_url}
    with live_server(env, args=("--workers", str(WORKERS)), timeout=STARTUP) as server:
        served: Counter[int] = Counter()
        while len(served) < WORKERS or min(served.values()) < 2:
            assert served.total() < MAX_TRIES, f"requests did not reach both workers: {served}"
            pid, response = _fresh(server, "POST", "/graphql", json={"query": QUERY})
            assert response.status_code == 200, response.text
            served[pid] += 1
        sent = served.total()

        scraped_by: dict[int, Scrape] = {}
        for _ in range(MAX_TRIES):
            pid, response = _fresh(server, "GET", "/metrics")
            assert response.status_code == 200, response.text
            scraped_by[pid] = Scrape.parse(response.text)
            if len(scraped_by) == WORKERS:
                break
        directory = _multiproc_dir(server)
        assert directory.is_dir()

    assert len(scraped_by) == WORKERS, "the scrapes reached one worker only"
    for scraped in scraped_by.values():
        assert scraped.value("storefront_http_requests_total", method="POST") == sent
        labels = {"operation_name": "Catalog", "outcome": "ok"}
        assert scraped.value("storefront_graphql_operations_total", **labels) == sent
        assert scraped.value("storefront_graphql_operation_duration_seconds_count") == sent
        assert scraped.value("storefront_db_statements_total") >= sent
    # The run's directory goes with it.
    assert not directory.exists()
