"""`GET /` sends a new user to GraphiQL at /graphql."""

from __future__ import annotations

from tests.conftest import Api


async def test_root_redirects_to_graphiql(api: Api) -> None:
    response = await api.client.get("/")

    assert response.status_code == 307
    assert response.headers["location"] == "/graphql"

    page = await api.client.get("/", headers={"Accept": "text/html"}, follow_redirects=True)
    assert page.status_code == 200
    assert str(page.url) == "http://test/graphql"
    assert "<title>Storefront GraphiQL</title>" in page.text
    # The editor's opening text says where a token comes from.
    assert "Tokens: `storefront token create --email you@example.com`" in page.text
    assert "printed by `make run`" in page.text


async def test_root_keeps_the_query_string(api: Api) -> None:
    response = await api.client.get("/", params={"query": "{ __typename }"})

    assert response.status_code == 307
    assert response.headers["location"] == "/graphql?query=%7B+__typename+%7D"


async def test_root_refuses_other_methods(api: Api) -> None:
    response = await api.client.post("/", json={"query": "{ __typename }"})

    assert response.status_code == 405
