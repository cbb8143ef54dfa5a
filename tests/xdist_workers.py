"""State of its own for each pytest-xdist worker (`make test` runs `-n TEST_WORKERS`).

Tests read TEST_DATABASE_URL and TEST_REDIS_URL from the environment, as do the
servers and workers they start. Worker `gwN` (N ≥ 1) gets, before collection:

- a database of its own beside TEST_DATABASE_URL's, `<name>_gwN`, made empty
  here and dropped when the worker ends;
- the Redis database N numbers below TEST_REDIS_URL's (modulo 16: `/15` gives
  gw1 `/14`, gw2 `/13`).

`gw0` keeps both as given. Everything else the tests start (servers, PgBouncer,
redis-server, clusters, network namespaces) is on free ports and temporary paths
already.
"""

from __future__ import annotations

import asyncio
import os

import asyncpg
from sqlalchemy.engine import make_url

REDIS_DATABASES = 16


def worker_number(workerinput: dict[str, object] | None) -> int:
    """0 outside xdist and for gw0."""
    if not workerinput:
        return 0
    return int(str(workerinput["workerid"]).removeprefix("gw"))


def redis_url_of(url: str, number: int) -> str:
    base, _, database = url.rpartition("/")
    if not base.startswith("redis") or not database.isdigit():
        base, database = url.rstrip("/"), "0"
    return f"{base}/{(int(database) - number) % REDIS_DATABASES}"


def database_url_of(url: str, number: int) -> str:
    parsed = make_url(url)
    return parsed.set(database=f"{parsed.database}_gw{number}").render_as_string(
        hide_password=False
    )


async def _recreate(url: str, *, drop_only: bool = False) -> None:
    parsed = make_url(url)
    admin = parsed.set(drivername="postgresql", database="postgres")
    connection = await asyncpg.connect(admin.render_as_string(hide_password=False))
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')
        if not drop_only:
            await connection.execute(f'CREATE DATABASE "{parsed.database}"')
    finally:
        await connection.close()


def isolate(number: int) -> None:
    """Points this worker's environment at its own database and Redis number."""
    if number == 0:
        return
    if url := os.environ.get("TEST_DATABASE_URL"):
        own = database_url_of(url, number)
        asyncio.run(_recreate(own))
        os.environ["TEST_DATABASE_URL"] = own
    if url := os.environ.get("TEST_REDIS_URL"):
        os.environ["TEST_REDIS_URL"] = redis_url_of(url, number)


def release(number: int) -> None:
    """Drops the database `isolate` made."""
    if number != 0 and (url := os.environ.get("TEST_DATABASE_URL")):
        asyncio.run(_recreate(url, drop_only=True))
