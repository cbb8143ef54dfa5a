"""Persisted queries through the HTTP endpoint, on the in-process store and on Redis.

APQ exactly as Apollo Client's link expects it, trusted documents, and the modes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from server.persisted.manifest import ManifestError
from server.persisted.protocol import TrustedDocument, sha256_hex
from tests.conftest import Api, Database
from tests.transport_support import (
    GQL_JSON,
    STORES,
    app_api,
    codes,
    get_params,
    hash_only,
    payload,
    persisted,
    register,
    store_env,
)

QUERY = "query Catalog { products(first: 2) { totalCount } }"
OTHER = "query Other { categories { name } }"
NOT_FOUND_HEADERS = "private, no-cache, must-revalidate"


@pytest.fixture(params=STORES)
async def env(request: pytest.FixtureRequest) -> AsyncIterator[dict[str, str]]:
    async with store_env(request.param) as settings:
        yield settings


@pytest.fixture
async def api(db: Database, env: dict[str, str]) -> AsyncIterator[Api]:
    async with app_api(db, env) as api:
        yield api


async def post(api: Api, payload: Any, accept: str = GQL_JSON, **headers: str) -> Any:
    return await api.client.post("/graphql", json=payload, headers={"Accept": accept, **headers})


# APQ -------------------------------------------------------------------------------------


@pytest.mark.parametrize("accept", [GQL_JSON, "application/json"])
async def test_apq_over_post_as_apollo_client_does_it(api: Api, accept: str) -> None:
    first = await post(api, hash_only(QUERY), accept)
    assert first.status_code == 200
    assert first.headers["cache-control"] == NOT_FOUND_HEADERS
    assert payload(first) == {
        "errors": [
            {
                "message": "PersistedQueryNotFound",
                "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"},
            }
        ]
    }

    registered = await post(api, register(QUERY), accept)
    assert registered.status_code == 200
    assert payload(registered) == {"data": {"products": {"totalCount": 0}}}

    again = await post(api, hash_only(QUERY), accept)
    assert again.status_code == 200
    assert payload(again) == {"data": {"products": {"totalCount": 0}}}


async def test_apq_over_get(api: Api) -> None:
    missing = await api.client.get("/graphql", params=get_params(hash_only(QUERY)))
    assert missing.status_code == 200
    assert codes(payload(missing)) == ["PERSISTED_QUERY_NOT_FOUND"]
    assert missing.headers["cache-control"] == NOT_FOUND_HEADERS

    registered = await api.client.get("/graphql", params=get_params(register(QUERY)))
    assert payload(registered) == {"data": {"products": {"totalCount": 0}}}
    served = await api.client.get("/graphql", params=get_params(hash_only(QUERY)))
    assert served.status_code == 200
    assert payload(served) == {"data": {"products": {"totalCount": 0}}}


async def test_hash_of_other_text_is_a_400_mismatch_and_stores_nothing(api: Api) -> None:
    wrong = {"query": QUERY, "extensions": persisted(sha256_hex(OTHER))}

    response = await post(api, wrong)

    assert response.status_code == 400
    assert codes(payload(response)) == ["PERSISTED_QUERY_MISMATCH"]
    assert codes(payload(await post(api, hash_only(OTHER)))) == ["PERSISTED_QUERY_NOT_FOUND"]
    assert codes(payload(await post(api, hash_only(QUERY)))) == ["PERSISTED_QUERY_NOT_FOUND"]


@pytest.mark.parametrize("version", [2, 0, "1", None])
async def test_versions_other_than_1_are_400(api: Api, version: Any) -> None:
    body = {"query": QUERY, "extensions": persisted(sha256_hex(QUERY), version)}

    response = await post(api, body)

    assert response.status_code == 400
    assert "version" in payload(response)["errors"][0]["message"]


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("query Broken { products { totalCount }", "GRAPHQL_PARSE_FAILED"),
        ("query Wrong { products { colour } }", "GRAPHQL_VALIDATION_FAILED"),
    ],
)
async def test_a_document_is_stored_only_once_it_parsed_and_validated(
    api: Api, query: str, code: str
) -> None:
    response = await post(api, register(query))

    assert response.status_code == 400
    assert codes(payload(response)) == [code]
    assert codes(payload(await post(api, hash_only(query)))) == ["PERSISTED_QUERY_NOT_FOUND"]


async def test_a_persisted_hit_skips_parsing_and_validation(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    await post(api, register(QUERY))

    def refuse(*_args: Any, **_kw: Any) -> Any:
        raise AssertionError("parsed or validated again")

    monkeypatch.setattr("schema.executor.parse", refuse)
    monkeypatch.setattr("schema.executor.validate", refuse)
    response = await post(api, hash_only(QUERY))

    assert payload(response) == {"data": {"products": {"totalCount": 0}}}


async def test_a_hash_only_mutation_over_get_is_405(api: Api) -> None:
    mutation = 'mutation Cancel { cancelOrder(id: "T3JkZXI6MQ==") { id } }'
    await api.services.persisted_queries.store.put_trusted(
        [TrustedDocument(id=sha256_hex(mutation), document=mutation)]
    )
    api.statements.clear()

    response = await api.client.get("/graphql", params=get_params(hash_only(mutation)))

    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert api.statements == []


# Modes -----------------------------------------------------------------------------------


async def test_off_mode_does_not_support_persisted_queries(db: Database) -> None:
    async with app_api(db, {"PERSISTED_QUERIES": "off"}) as api:
        for body in (hash_only(QUERY), register(QUERY)):
            response = await post(api, body)
            assert response.status_code == 400
            assert payload(response)["errors"][0]["message"] == "PersistedQueryNotSupported"
            assert codes(payload(response)) == ["PERSISTED_QUERY_NOT_SUPPORTED"]
        assert payload(await post(api, {"query": QUERY})) == {
            "data": {"products": {"totalCount": 0}}
        }


@pytest.fixture
async def trusted_env(env: dict[str, str], tmp_path: Path) -> AsyncIterator[dict[str, str]]:
    manifest = {
        "format": "apollo-persisted-query-manifest",
        "version": 1,
        "operations": [
            {"id": sha256_hex(QUERY), "name": "Catalog", "type": "query", "body": QUERY}
        ],
    }
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest))
    return {**env, "PERSISTED_QUERIES": "trusted", "PERSISTED_QUERIES_MANIFEST": str(path)}


async def test_trusted_mode_runs_only_trusted_documents(
    db: Database, trusted_env: dict[str, str]
) -> None:
    async with app_api(db, trusted_env) as api:
        data = {"data": {"products": {"totalCount": 0}}}
        assert payload(await post(api, hash_only(QUERY))) == data
        assert payload(await post(api, {"query": QUERY})) == data  # its exact text is trusted
        assert payload(await post(api, {"documentId": f"sha256:{sha256_hex(QUERY)}"})) == data
        assert payload(await post(api, {"documentId": sha256_hex(QUERY)})) == data

        for body in (
            {"query": OTHER},
            hash_only(OTHER),
            register(OTHER),  # APQ registration is off
            {"documentId": "unknown-id"},
        ):
            api.statements.clear()
            response = await post(api, body)
            assert response.status_code == 400, body
            assert codes(payload(response)) == ["PERSISTED_QUERY_NOT_IN_LIST"], body
            assert api.statements == []
        assert codes(payload(await post(api, hash_only(OTHER)))) == ["PERSISTED_QUERY_NOT_IN_LIST"]


async def test_trusted_mode_by_relay_id(db: Database, env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "relay.json"
    path.write_text(json.dumps({"a1b2c3": QUERY}))
    settings = {**env, "PERSISTED_QUERIES": "trusted", "PERSISTED_QUERIES_MANIFEST": str(path)}
    async with app_api(db, settings) as api:
        response = await post(api, {"documentId": "a1b2c3"})
        assert payload(response) == {"data": {"products": {"totalCount": 0}}}
        mismatch = await post(api, {"documentId": "a1b2c3", "query": OTHER})
        assert codes(payload(mismatch)) == ["PERSISTED_QUERY_MISMATCH"]


@pytest.mark.parametrize(
    ("allow", "role", "runs"),
    [
        ("true", "admin", True),
        ("false", "admin", False),
        ("true", "customer", False),
    ],
)
async def test_admins_may_send_any_document_when_allowed(
    db: Database, trusted_env: dict[str, str], allow: str, role: str, runs: bool
) -> None:
    settings = {**trusted_env, "TRUSTED_DOCUMENTS_ALLOW_ADMIN": allow}
    async with app_api(db, settings) as api:
        token = await api.token(f"{role}@example.com", role=role)
        response = await post(api, {"query": OTHER}, Authorization=f"Bearer {token}")
        if runs:
            assert payload(response) == {"data": {"categories": []}}
        else:
            assert codes(payload(response)) == ["PERSISTED_QUERY_NOT_IN_LIST"]
        hashed = await post(api, hash_only(OTHER), Authorization=f"Bearer {token}")
        assert codes(payload(hashed)) == ["PERSISTED_QUERY_NOT_IN_LIST"]


async def test_audit_mode_runs_everything_and_counts_untrusted_documents(
    db: Database, trusted_env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    settings = {**trusted_env, "PERSISTED_QUERIES": "audit"}
    client = {"apollographql-client-name": "ios-app", "apollographql-client-version": "4.2.0"}
    async with app_api(db, settings) as api:
        with caplog.at_level(logging.WARNING, logger="storefront.persisted"):
            for _ in range(3):
                body = payload(await post(api, {"query": OTHER}, **client))
                assert body == {"data": {"categories": []}}
            assert (await post(api, {"query": QUERY}, **client)).status_code == 200
            assert codes(payload(await post(api, register(OTHER)))) == []  # APQ still works

        counts = await api.services.persisted_queries.store.unknown_counts()
        assert counts == {sha256_hex(OTHER): 4}
        assert sha256_hex(QUERY) not in counts  # trusted: not counted
        [record] = [r for r in caplog.records if r.name == "storefront.persisted"]
        assert sha256_hex(OTHER) in record.getMessage()
        assert "ios-app version 4.2.0" in record.getMessage()


async def test_apq_mode_serves_trusted_documents_by_hash(
    db: Database, trusted_env: dict[str, str]
) -> None:
    async with app_api(db, {**trusted_env, "PERSISTED_QUERIES": "apq"}) as api:
        assert payload(await post(api, hash_only(QUERY))) == {
            "data": {"products": {"totalCount": 0}}
        }


async def test_an_invalid_startup_manifest_stops_the_server(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"bad-one": "{ nope }"}))

    with pytest.raises(ManifestError, match="bad-one"):
        async with app_api(db, {"PERSISTED_QUERIES_MANIFEST": str(path)}):
            pass
