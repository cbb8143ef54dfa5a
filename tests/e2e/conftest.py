"""One real server for the end-to-end tests: a migrated SQLite file, Redis when configured."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
from redis.asyncio import Redis

from resolvers.tokens import create_token
from server.cli.migrate import upgrade
from server.database import create_engine, create_sessionmaker
from server.settings import Settings
from tests.live_server import LiveServer, live_server
from tests.redis_support import clear_persisted, redis_url


@pytest_asyncio.fixture(scope="session")
async def e2e_database(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('e2e') / 'e2e.db'}"
    await upgrade(url)
    yield url


@pytest_asyncio.fixture(scope="session")
async def e2e_env(e2e_database: str) -> AsyncIterator[dict[str, str]]:
    env = {"DATABASE_URL": e2e_database}
    url = redis_url()
    if url is not None:
        client = Redis.from_url(url)
        await clear_persisted(client)
        await client.aclose()
        env["REDIS_URL"] = url
    yield env


@pytest.fixture(scope="session")
def e2e_server(e2e_env: dict[str, str]) -> Iterator[LiveServer]:
    with live_server(e2e_env) as server:
        yield server


@pytest_asyncio.fixture(scope="session")
async def e2e_admin_token(e2e_database: str) -> AsyncIterator[str]:
    engine = create_engine(Settings.from_env({"DATABASE_URL": e2e_database}))
    try:
        issued = await create_token(
            sessionmaker=create_sessionmaker(engine), email="e2e@example.com", role="admin"
        )
    finally:
        await engine.dispose()
    yield issued.token
