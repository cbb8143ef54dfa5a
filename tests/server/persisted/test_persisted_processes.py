"""Two real server processes sharing one Redis: APQ and trusted documents are shared."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from server.cli.migrate import upgrade
from server.persisted.protocol import sha256_hex
from tests.live_server import live_server
from tests.redis_support import clear_persisted, require_redis_url
from tests.transport_support import payload

QUERY = "query Shared { products(first: 1) { totalCount } }"
DATA = {"data": {"products": {"totalCount": 0}}}


@pytest.fixture
async def shared_env(tmp_path: Path) -> AsyncIterator[dict[str, str]]:
    redis_url = require_redis_url()
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    await upgrade(database_url)
    client = Redis.from_url(redis_url)
    await clear_persisted(client)
    yield {"DATABASE_URL": database_url, "REDIS_URL": redis_url, "REDIS_TIMEOUT_MS": "1000"}
    await clear_persisted(client)
    await client.aclose()


def hashed(query: str) -> dict[str, object]:
    return {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha256_hex(query)}}}


def test_a_hash_registered_through_one_is_served_by_the_other(shared_env: dict[str, str]) -> None:
    with live_server(shared_env) as one, live_server(shared_env) as two:
        assert payload(httpx.post(one.graphql, json=hashed(QUERY)))["errors"][0]["extensions"] == {
            "code": "PERSISTED_QUERY_NOT_FOUND"
        }
        assert payload(httpx.post(one.graphql, json={"query": QUERY, **hashed(QUERY)})) == DATA

        assert payload(httpx.post(two.graphql, json=hashed(QUERY))) == DATA
        params = {"extensions": json.dumps(hashed(QUERY)["extensions"])}
        assert payload(httpx.get(two.graphql, params=params)) == DATA


def test_a_manifest_imported_once_is_honoured_by_both(
    shared_env: dict[str, str], tmp_path: Path
) -> None:
    other = "query NotListed { categories { name } }"
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"a1": QUERY}))
    env = {**shared_env, "PERSISTED_QUERIES": "trusted"}
    with live_server(env) as one, live_server(env) as two:
        for server in (one, two):
            response = httpx.post(server.graphql, json=hashed(QUERY))
            assert payload(response)["errors"][0]["extensions"]["code"] == (
                "PERSISTED_QUERY_NOT_IN_LIST"
            )

        imported = subprocess.run(
            [sys.executable, "-m", "server.cli", "persisted", "import", str(manifest)],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert imported.returncode == 0, imported.stderr

        for server in (one, two):
            assert payload(httpx.post(server.graphql, json=hashed(QUERY))) == DATA
            assert payload(httpx.post(server.graphql, json={"documentId": "a1"})) == DATA
            assert payload(httpx.post(server.graphql, json={"query": QUERY})) == DATA
            refused = httpx.post(server.graphql, json={"query": other})
            assert refused.status_code == 400
            assert payload(refused)["errors"][0]["extensions"]["code"] == (
                "PERSISTED_QUERY_NOT_IN_LIST"
            )
