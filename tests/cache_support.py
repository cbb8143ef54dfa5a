"""Helpers for the result-cache tests: namespaced Redis stores, and a Redis of our own to kill.

Tests against the shared TEST_REDIS_URL keep to a namespace of their own and
delete it afterwards. Tests that stop, pause or restart Redis run a private
`redis-server` on a free port, so nobody else's keys are disturbed.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import signal
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from server.cache.store_redis import NAMESPACE
from tests.conftest import Api, Database
from tests.redis_support import require_redis_url
from tests.server.apps import serve


def unique_namespace() -> str:
    """A namespace under the real one, for one test alone."""
    return f"{NAMESPACE}:test-{secrets.token_hex(4)}"


async def delete_namespace(client: Redis, namespace: str) -> None:
    keys = [key async for key in client.scan_iter(match=namespace + ":*", count=1000)]
    if keys:
        await client.delete(*keys)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class RedisProcess:
    """A `redis-server` of the test's own, which it may stop, freeze and start again."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = _free_port()
        self.process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed")
        self.process = await asyncio.create_subprocess_exec(
            *(binary, "--port", str(self.port), "--bind", "127.0.0.1"),
            *("--save", "", "--appendonly", "no", "--dir", str(self.directory)),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        client = Redis.from_url(self.url)
        try:
            for _ in range(200):
                try:
                    await client.ping()
                    return
                except (RedisError, OSError):
                    await asyncio.sleep(0.02)
            raise RuntimeError("redis-server did not start")
        finally:
            await client.aclose()

    def pause(self) -> None:
        """Freezes the server (SIGSTOP): connections are still accepted, nothing answers."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    async def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            await self.process.wait()
            self.process = None


@asynccontextmanager
async def redis_process(directory: Path) -> AsyncIterator[RedisProcess]:
    server = RedisProcess(directory)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def clear_cache(url: str) -> None:
    """Delete the result cache's keys from the Redis at `url` (tests own that database)."""
    client = Redis.from_url(url)
    try:
        await delete_namespace(client, NAMESPACE)
    finally:
        await client.aclose()


def cache_env(backend: str, redis_url: str | None = None, **env: str) -> dict[str, str]:
    """Settings of an app with the result cache on, in process or in Redis.

    Redis gets a second, not 50 ms, to answer: on a loaded test machine the event
    loop alone can be that late, and these tests are not about the bound.
    """
    settings = {"CACHE_ENABLED": "true", "CACHE_REDIS_TIMEOUT_MS": "1000", **env}
    if backend == "redis":
        assert redis_url is not None
        settings["REDIS_URL"] = redis_url
    return settings


CACHE_BACKENDS = ["memory", "redis"]


@asynccontextmanager
async def cached_app(db: Database, backend: str, **env: str) -> AsyncIterator[Api]:
    """The real app over `db` with the result cache on, in process or in the Redis of
    TEST_REDIS_URL (skips without it), whose cache keys are cleared before and after."""
    redis_url = require_redis_url() if backend == "redis" else None
    if redis_url is not None:
        await clear_cache(redis_url)
    try:
        async with serve(db, **cache_env(backend, redis_url, **env)) as api:
            yield api
    finally:
        if redis_url is not None:
            await clear_cache(redis_url)
