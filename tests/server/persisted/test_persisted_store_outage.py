"""When the persisted-query store (Redis) is down or hung: lookups are a quick 503 with a
code, registration and audit counting are skipped, plain queries still run."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from resolvers.viewer import ANONYMOUS, Viewer
from schema import Executor, create_schema
from server.http.graphql_request import GraphQLRequest
from server.persisted.protocol import sha256_hex
from server.persisted.queries import (
    PERSISTED_QUERY_STORE_UNAVAILABLE,
    PersistedQueries,
    PersistedQueryError,
    PersistedQueryMode,
)
from server.persisted.stores import RedisPersistedQueryStore
from server.redis_guard import bounded_client

QUERY = "{ categories { name } }"


@pytest.fixture
async def silent_port() -> AsyncIterator[int]:
    """A port that accepts connections and never answers: a frozen Redis."""

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.read(-1)
        finally:
            writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


@pytest.fixture(params=["refused", "hung"])
async def down_store(
    request: pytest.FixtureRequest, silent_port: int
) -> AsyncIterator[RedisPersistedQueryStore]:
    """The Redis store over a Redis that refuses connections, or that never answers."""
    port = 1 if request.param == "refused" else silent_port
    client = bounded_client(f"redis://127.0.0.1:{port}/0", timeout=0.05)
    yield RedisPersistedQueryStore(client, apq_ttl_seconds=60, timeout=0.05)
    await client.aclose()


async def _viewer() -> Viewer:
    return ANONYMOUS


def _persisted(mode: PersistedQueryMode, store: RedisPersistedQueryStore) -> PersistedQueries:
    return PersistedQueries(executor=Executor(create_schema()._schema), store=store, mode=mode)


def _request(query: str | None, sha: str | None) -> GraphQLRequest:
    extensions = None if sha is None else {"persistedQuery": {"version": 1, "sha256Hash": sha}}
    return GraphQLRequest(query, None, None, extensions)  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", [PersistedQueryMode.APQ, PersistedQueryMode.TRUSTED])
async def test_a_hash_lookup_is_a_quick_503_with_its_code(
    mode: PersistedQueryMode, down_store: RedisPersistedQueryStore
) -> None:
    persisted = _persisted(mode, down_store)
    waits = []
    for _ in range(5):
        started = time.monotonic()
        with pytest.raises(PersistedQueryError) as raised:
            await persisted.document(_request(None, sha256_hex(QUERY)), viewer=_viewer)
        waits.append(time.monotonic() - started)
        assert raised.value.status == 503
        assert raised.value.code == PERSISTED_QUERY_STORE_UNAVAILABLE

    assert max(waits) < 0.5  # each within the bound (x2, and a loaded machine's slack)
    assert waits[-1] < 0.01  # then the breaker is open: Redis is not asked at all


@pytest.mark.parametrize("mode", [PersistedQueryMode.APQ, PersistedQueryMode.AUDIT])
async def test_registration_and_audit_are_skipped_and_the_query_runs(
    mode: PersistedQueryMode, down_store: RedisPersistedQueryStore
) -> None:
    persisted = _persisted(mode, down_store)
    registration = _request(QUERY, sha256_hex(QUERY))
    with_hash = await persisted.document(registration, viewer=_viewer)
    await persisted.register(registration, with_hash, registrant="ip:203.0.113.7")  # no raise
    plain = await persisted.document(_request(QUERY, None), viewer=_viewer)
    assert with_hash.sha256 == plain.sha256 == sha256_hex(QUERY)
    assert persisted.cached_documents == 0  # not registered, so not known in process
