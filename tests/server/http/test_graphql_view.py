"""GraphQL over HTTP: statuses, codes and masking for requests that go wrong."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.conftest import Api
from tests.factories import Factory

GQL_JSON = "application/graphql-response+json"


async def _post_raw(
    api: Api, content: bytes, accept: str = GQL_JSON, ctype: str = "application/json"
) -> Any:
    return await api.client.post(
        "/graphql", content=content, headers={"Content-Type": ctype, "Accept": accept}
    )


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{not json", "not valid JSON"),
        (b'"a string"', "JSON object"),
        (b"42", "JSON object"),
        (b"{}", "no `query`"),
        (b'{"query": 42}', "no `query`"),
        (b'{"query": "{ viewer { id } }", "variables": [1]}', "`variables`"),
    ],
)
async def test_bodies_that_are_not_graphql_requests_are_400(
    api: Api, body: bytes, fragment: str
) -> None:
    for accept in (GQL_JSON, "application/json"):
        response = await _post_raw(api, body, accept)
        assert response.status_code == 400
        error = response.json()["errors"][0]
        assert fragment in error["message"]
        assert error["extensions"]["code"] == "BAD_USER_INPUT"


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"query": "{ products { nodes { name }"}, "GRAPHQL_PARSE_FAILED"),
        ({"query": "{ products { nodes { colour } } }"}, "GRAPHQL_VALIDATION_FAILED"),
        ({"query": "query A { viewer { id } }", "operationName": "B"}, "GRAPHQL_VALIDATION_FAILED"),
        (
            {
                "query": "query($n: Int) { products(first: $n) { totalCount } }",
                "variables": {"n": "many"},
            },
            "BAD_USER_INPUT",
        ),
        ({"query": "query($n: Int!) { products(first: $n) { totalCount } }"}, "BAD_USER_INPUT"),
    ],
)
async def test_requests_rejected_before_execution(
    api: Api, payload: dict[str, Any], code: str
) -> None:
    api.statements.clear()
    response = await api.client.post("/graphql", json=payload, headers={"Accept": GQL_JSON})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith(GQL_JSON)
    body = response.json()
    assert "data" not in body
    assert body["errors"][0]["extensions"]["code"] == code
    assert api.statements == []  # nothing executed
    legacy = await api.client.post("/graphql", json=payload, headers={"Accept": "application/json"})
    assert legacy.status_code in (200, 400)
    assert legacy.json()["errors"][0]["extensions"]["code"] == code


async def test_validation_errors_are_not_masked(api: Api) -> None:
    body = (await api.client.post("/graphql", json={"query": "{ prodcts { totalCount } }"})).json()
    assert "prodcts" in body["errors"][0]["message"]


@pytest.mark.parametrize("first", [-1, 101, 1000])
async def test_first_out_of_range_is_bad_user_input(api: Api, first: int) -> None:
    body = await api.query("query($n: Int) { products(first: $n) { totalCount } }", {"n": first})
    assert body["data"] is None
    assert body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "first"}


@pytest.mark.parametrize("cursor", ["garbage", "eyJub3QiOiJhIGN1cnNvciJ9", ""])
async def test_foreign_cursor_is_bad_user_input(api: Api, factory: Factory, cursor: str) -> None:
    await factory.product()
    body = await api.query(
        "query($c: String) { products(after: $c) { totalCount } }", {"c": cursor}
    )
    assert body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "after"}


async def test_cursor_of_another_sort_is_refused(api: Api, factory: Factory) -> None:
    await factory.product()
    await factory.product()
    page = await api.data("{ products(first: 1, sort: PRICE_ASC) { pageInfo { endCursor } } }")
    body = await api.query(
        "query($c: String) { products(after: $c, sort: NAME) { totalCount } }",
        {"c": page["products"]["pageInfo"]["endCursor"]},
    )
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_get_runs_queries_and_refuses_mutations(api: Api, factory: Factory) -> None:
    await factory.product(name="Kettle")
    response = await api.client.get(
        "/graphql",
        params={
            "query": "query($n: Int) { products(first: $n) { nodes { name } } }",
            "variables": '{"n": 1}',
        },
    )
    assert response.status_code == 200
    assert response.json()["data"] == {"products": {"nodes": [{"name": "Kettle"}]}}
    response = await api.client.get("/graphql", params={"query": "mutation { __typename }"})
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


async def test_graphiql_page_and_health(api: Api) -> None:
    page = await api.client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "graphiql" in page.text.lower()
    health = await api.client.get("/health")
    assert health.json() == {"status": "ok", "database": "up"}


async def test_bad_tokens_are_401(api: Api) -> None:
    for header in ("Bearer nope", "Basic abc", "Bearer"):
        response = await api.client.post(
            "/graphql", json={"query": "{ viewer { id } }"}, headers={"Authorization": header}
        )
        assert response.status_code == 401
        assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_revoked_token_is_401_once_the_auth_cache_expires(api: Api) -> None:
    from resolvers.tokens import revoke_token
    from server.auth.viewer_cache import AuthCache

    now = [0.0]
    api.replace_services(auth_cache=AuthCache(ttl_seconds=5, clock=lambda: now[0]))
    token = await api.token("gone@example.com")
    query = "{ viewer { email } }"
    assert (await api.data(query, token=token))["viewer"]["email"] == "gone@example.com"
    await revoke_token(sessionmaker=api.db.sessionmaker, token_or_id=token)
    api.statements.clear()
    # Within AUTH_CACHE_SECONDS the process still knows the token, without a lookup...
    assert (await api.data(query, token=token))["viewer"]["email"] == "gone@example.com"
    assert not any("api_tokens" in s for s in api.statements)
    # ...and after it, the revocation holds.
    now[0] = 5.1
    response = await api.post(query, token=token)
    assert response.status_code == 401


async def test_unexpected_errors_are_masked_and_logged(
    api: Api, factory: Factory, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loaders import listings

    async def broken(**_kw: Any) -> Any:
        raise RuntimeError("SELECT secret FROM users -- boom")

    monkeypatch.setattr(listings, "all_categories", broken)
    with caplog.at_level(logging.ERROR, logger="storefront.errors"):
        response = await api.client.post("/graphql", json={"query": "{ categories { name } }"})
    assert response.status_code == 200
    error = response.json()["errors"][0]
    assert error["message"] == "Internal server error"
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert "secret" not in response.text
    assert error["extensions"]["requestId"] == response.headers["x-request-id"]
    assert "SELECT secret" in caplog.text
    assert response.headers["x-request-id"] in caplog.text


async def test_unsupported_content_type_is_415(api: Api) -> None:
    response = await _post_raw(
        api, b"query=%7Bviewer%7Bid%7D%7D", ctype="application/x-www-form-urlencoded"
    )
    assert response.status_code == 415


async def test_unacceptable_accept_is_406(api: Api) -> None:
    response = await _post_raw(api, b'{"query": "{ viewer { id } }"}', accept="text/csv")
    assert response.status_code == 406
