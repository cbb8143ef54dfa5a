"""When the persisted-query store (Redis) is down: lookups are a 503 with a code,
registration and audit counting are skipped, plain queries still run."""

from __future__ import annotations

from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from resolvers.viewer import ANONYMOUS, Viewer
from schema import Executor, create_schema
from schema.persisted import sha256_hex
from server.graphql_request import GraphQLRequest
from server.persisted_queries import (
    PERSISTED_QUERY_STORE_UNAVAILABLE,
    PersistedQueries,
    PersistedQueryError,
    PersistedQueryMode,
)

QUERY = "{ categories { name } }"


class DownStore:
    """Every call fails as redis-py does when the server is unreachable."""

    def __getattr__(self, name: str) -> Any:
        async def fail(*_args: Any, **_kwargs: Any) -> Any:
            raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6379.")

        return fail


async def _viewer() -> Viewer:
    return ANONYMOUS


def _persisted(mode: PersistedQueryMode) -> PersistedQueries:
    return PersistedQueries(
        executor=Executor(create_schema()._schema),
        store=DownStore(),
        mode=mode,  # type: ignore[arg-type]
    )


def _request(query: str | None, sha: str | None) -> GraphQLRequest:
    extensions = None if sha is None else {"persistedQuery": {"version": 1, "sha256Hash": sha}}
    return GraphQLRequest(query, None, None, extensions)  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", [PersistedQueryMode.APQ, PersistedQueryMode.TRUSTED])
async def test_a_hash_lookup_is_503_with_its_code(mode: PersistedQueryMode) -> None:
    with pytest.raises(PersistedQueryError) as raised:
        await _persisted(mode).document(_request(None, sha256_hex(QUERY)), viewer=_viewer)
    assert raised.value.status == 503
    assert raised.value.code == PERSISTED_QUERY_STORE_UNAVAILABLE


@pytest.mark.parametrize("mode", [PersistedQueryMode.APQ, PersistedQueryMode.AUDIT])
async def test_registration_and_audit_are_skipped_and_the_query_runs(
    mode: PersistedQueryMode,
) -> None:
    persisted = _persisted(mode)
    with_hash = await persisted.document(_request(QUERY, sha256_hex(QUERY)), viewer=_viewer)
    plain = await persisted.document(_request(QUERY, None), viewer=_viewer)
    assert with_hash.sha256 == plain.sha256 == sha256_hex(QUERY)
