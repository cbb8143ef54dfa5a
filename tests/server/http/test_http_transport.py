"""GraphQL over HTTP at the edge: media types, CORS, and bad input that must never be a 500."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import Api, Database
from tests.transport_support import GQL_JSON, app_api, codes, get_params, payload, persisted

QUERY = "{ products { totalCount } }"


@pytest.mark.parametrize(
    "content_type",
    [
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "text/plain",
        "text/plain;charset=UTF-8",
        "",
        "application/json; charset=latin-1",
        "application/graphql",
    ],
)
async def test_cors_simple_and_other_content_types_are_refused(api: Api, content_type: str) -> None:
    api.statements.clear()
    headers = {"Content-Type": content_type} if content_type else {}

    response = await api.client.post(
        "/graphql", content=b'{"query": "mutation { __typename }"}', headers=headers
    )

    assert response.status_code == 415
    assert codes(payload(response)) == ["BAD_USER_INPUT"]
    assert api.statements == []


async def test_json_with_utf8_charset_is_accepted(api: Api) -> None:
    response = await api.client.post(
        "/graphql",
        content=b'{"query": "{ products { totalCount } }"}',
        headers={"Content-Type": "application/json; charset=utf-8"},
    )

    assert payload(response) == {"data": {"products": {"totalCount": 0}}}


@pytest.mark.parametrize(
    ("accept", "media_type"),
    [
        (GQL_JSON, GQL_JSON),
        ("application/json", "application/json"),
        ("*/*", "application/json"),
        (f"{GQL_JSON}, application/json;q=0.9", GQL_JSON),
        (f"{GQL_JSON};q=0.1, application/json", "application/json"),
    ],
)
async def test_response_media_type_follows_accept(api: Api, accept: str, media_type: str) -> None:
    response = await api.client.post("/graphql", json={"query": QUERY}, headers={"Accept": accept})

    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == media_type


async def test_no_cors_headers_unless_an_origin_is_allowed(api: Api) -> None:
    preflight = await api.client.options(
        "/graphql",
        headers={
            "Origin": "https://evil.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert "access-control-allow-origin" not in preflight.headers
    response = await api.client.post(
        "/graphql", json={"query": QUERY}, headers={"Origin": "https://evil.example"}
    )
    assert "access-control-allow-origin" not in response.headers


@pytest.fixture
async def cors_api(db: Database) -> AsyncIterator[Api]:
    env = {"CORS_ALLOWED_ORIGINS": "https://shop.example, https://admin.example"}
    async with app_api(db, env) as api:
        yield api


async def test_allowed_origins_pass_the_preflight(cors_api: Api) -> None:
    request = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,authorization",
    }

    allowed = await cors_api.client.options(
        "/graphql", headers={"Origin": "https://shop.example", **request}
    )
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://shop.example"
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()

    refused = await cors_api.client.options(
        "/graphql", headers={"Origin": "https://evil.example", **request}
    )
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
    response = await cors_api.client.post(
        "/graphql", json={"query": QUERY}, headers={"Origin": "https://admin.example"}
    )
    assert response.headers["access-control-allow-origin"] == "https://admin.example"


# Bad input is a 4xx, never a 500 ----------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {"extensions": "{not json"},
        {"extensions": "[1]"},
        {"extensions": '{"persistedQuery": "abc"}'},
        {"extensions": '{"persistedQuery": {"version": 1}}'},
        {"extensions": '{"persistedQuery": {"version": 1, "sha256Hash": "xyz"}}'},
        {"extensions": '{"persistedQuery": {"version": 1, "sha256Hash": "' + "g" * 64 + '"}}'},
        {"extensions": '{"persistedQuery": {"version": 1, "sha256Hash": "' + "a" * 63 + '"}}'},
        {"extensions": '{"persistedQuery": {"version": 1, "sha256Hash": "' + "a" * 65 + '"}}'},
        {"extensions": '{"persistedQuery": {"version": 1, "sha256Hash": 12}}'},
        {"extensions": '{"persistedQuery": {"version": "x", "sha256Hash": "a"}}'},
        {"documentId": "an id with spaces"},
        {"documentId": ""},
        {"documentId": "x" * 300},
        {"variables": "{oops", "query": QUERY},
    ],
)
async def test_malformed_persisted_query_parameters_are_400(
    api: Api, params: dict[str, str]
) -> None:
    api.statements.clear()

    response = await api.client.get("/graphql", params=params, headers={"Accept": GQL_JSON})

    assert response.status_code == 400, response.text
    assert codes(payload(response)) == ["BAD_USER_INPUT"]
    assert api.statements == []
    post = await api.client.post(
        "/graphql",
        json={k: v for k, v in params.items() if k in ("documentId", "query")}
        | {"extensions": _decoded(params.get("extensions"))},
    )
    assert post.status_code in (400, 200), post.text
    assert post.status_code != 500


def _decoded(raw: str | None) -> object:
    import json

    try:
        return json.loads(raw) if raw is not None else None
    except ValueError:
        return raw


async def test_a_1_mb_document_is_413(api: Api) -> None:
    document = "{ " + "products { totalCount } " * 45_000 + "}"
    assert len(document) > 1_000_000
    api.statements.clear()

    response = await api.client.post(
        "/graphql", json={"query": document, "extensions": persisted("a" * 64)}
    )

    assert response.status_code == 413
    assert api.statements == []


async def test_uppercase_hex_hashes_are_accepted(api: Api) -> None:
    from server.persisted.protocol import sha256_hex

    digest = sha256_hex(QUERY).upper()
    response = await api.client.post(
        "/graphql", json={"query": QUERY, "extensions": persisted(digest)}
    )
    assert payload(response) == {"data": {"products": {"totalCount": 0}}}
    again = await api.client.get("/graphql", params=get_params({"extensions": persisted(digest)}))
    assert payload(again) == {"data": {"products": {"totalCount": 0}}}
