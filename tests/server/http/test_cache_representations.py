"""One cached answer, two representations: `Vary: Accept` and an ETag per media type,
through HTTP with the result cache on (in process and in Redis), GET and POST."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from server.cache.cached_response import etag_of
from server.http.cache_headers import representation_etag
from tests.cache_support import CACHE_BACKENDS, cached_app
from tests.conftest import Api, Database
from tests.factories import Factory
from tests.server.apps import serve

CATEGORIES = "{ categories { name } }"
JSON = "application/json"
GRAPHQL_JSON = "application/graphql-response+json"
MEDIA_TYPES = (JSON, GRAPHQL_JSON)


@pytest.fixture(params=CACHE_BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.param
    return backend


@pytest_asyncio.fixture
async def api(db: Database, backend: str) -> AsyncIterator[Api]:
    async with cached_app(db, backend) as api:
        yield api


async def ask(
    api: Api, method: str, media_type: str, *, token: str | None = None, **headers: str
) -> httpx.Response:
    """`CATEGORIES` by GET or POST, accepting only `media_type`."""
    all_headers = {"Accept": media_type, **headers}
    if token is not None:
        all_headers["Authorization"] = f"Bearer {token}"
    if method == "GET":
        response: httpx.Response = await api.client.get(
            "/graphql", params={"query": CATEGORIES}, headers=all_headers
        )
        return response
    posted: httpx.Response = await api.post(CATEGORIES, headers=all_headers)
    return posted


def payload(response: httpx.Response) -> Any:
    body = response.json()
    body.pop("extensions")  # the cost, which is per request
    return body


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_each_representation_has_its_own_etag_and_varies_on_accept(
    api: Api, factory: Factory, method: str
) -> None:
    await factory.category(name="Home")

    answers = {media_type: await ask(api, method, media_type) for media_type in MEDIA_TYPES}

    assert [answers[m].headers["x-cache"] for m in MEDIA_TYPES] == ["MISS", "HIT"]
    assert payload(answers[JSON]) == payload(answers[GRAPHQL_JSON])  # one stored answer
    for media_type, response in answers.items():
        assert response.status_code == 200
        assert response.headers["content-type"] == media_type
        assert response.headers.get_list("vary") == ["Accept, Accept-Encoding"]
        assert response.headers["cache-control"].startswith("public, max-age=")
    assert answers[JSON].headers["etag"] != answers[GRAPHQL_JSON].headers["etag"]
    # Asked again, each representation keeps its own tag.
    for media_type in MEDIA_TYPES:
        again = await ask(api, method, media_type)
        assert again.headers["etag"] == answers[media_type].headers["etag"]


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_304_is_given_only_for_the_representation_held(
    api: Api, factory: Factory, method: str
) -> None:
    await factory.category(name="Home")
    tags = {m: (await ask(api, method, m)).headers["etag"] for m in MEDIA_TYPES}

    for media_type in MEDIA_TYPES:
        other = GRAPHQL_JSON if media_type == JSON else JSON
        held = await ask(api, method, media_type, **{"If-None-Match": tags[media_type]})
        crossed = await ask(api, method, media_type, **{"If-None-Match": tags[other]})

        assert held.status_code == 304
        assert held.content == b""
        assert held.headers["etag"] == tags[media_type]
        assert held.headers.get_list("vary") == ["Accept, Accept-Encoding"]
        assert held.headers["cache-control"].startswith("public, max-age=")
        assert crossed.status_code == 200
        assert crossed.headers["content-type"] == media_type
        assert crossed.headers["etag"] == tags[media_type]
        assert payload(crossed)["data"] == {"categories": [{"name": "Home"}]}


async def test_a_private_answer_varies_on_authorization_and_accept_in_one_header(
    api: Api,
) -> None:
    alice = await api.token("alice@example.com")
    mine = "{ viewer { email } }"

    answers = [
        await api.post(mine, token=alice, headers={"Accept": media_type})
        for media_type in MEDIA_TYPES
    ]

    assert [a.headers["x-cache"] for a in answers] == ["MISS", "HIT"]
    for response in answers:
        assert response.headers["cache-control"].startswith("private, max-age=")
        assert response.headers.get_list("vary") == ["Authorization, Accept, Accept-Encoding"]
    assert answers[0].headers["etag"] != answers[1].headers["etag"]
    held = await api.post(
        mine,
        token=alice,
        headers={"Accept": GRAPHQL_JSON, "If-None-Match": answers[1].headers["etag"]},
    )
    assert held.status_code == 304
    assert held.headers.get_list("vary") == ["Authorization, Accept, Accept-Encoding"]


async def test_cors_adds_origin_to_the_same_vary_header(db: Database, factory: Factory) -> None:
    await factory.category()
    origin = "https://shop.example"
    async with cached_app(db, "memory", CORS_ALLOWED_ORIGINS=origin) as api:
        response = await ask(api, "GET", JSON, Origin=origin)

    assert response.headers["access-control-allow-origin"] == origin
    assert response.headers.get_list("vary") == ["Accept, Accept-Encoding, Origin"]


async def test_the_tags_are_the_stored_bodys_tag_per_media_type(api: Api, factory: Factory) -> None:
    await factory.category()

    answers = {m: await ask(api, "GET", m) for m in MEDIA_TYPES}

    content = answers[JSON].content
    stored = content[: content.rindex(b',"extensions":')] + b"}"  # what the cache holds
    for media_type, response in answers.items():
        assert response.headers["etag"] == representation_etag(etag_of(stored), media_type)


async def test_uncacheable_answers_have_no_etag_and_still_vary_on_accept(api: Api) -> None:
    query = {"query": "{ viewer { email } }"}

    refused = await api.client.get("/graphql", params=query, headers={"Accept": JSON})
    anything = await api.client.get(
        "/graphql", params=query, headers={"Accept": JSON, "If-None-Match": "*"}
    )

    assert refused.headers["cache-control"] == "no-store"
    assert "etag" not in refused.headers
    assert refused.headers.get_list("vary") == ["Accept, Accept-Encoding"]
    assert anything.status_code == 200


async def test_answers_vary_on_accept_with_the_cache_off(db: Database, factory: Factory) -> None:
    await factory.category()
    async with serve(db) as api:
        response = await ask(api, "GET", GRAPHQL_JSON)

    assert response.status_code == 200
    assert "etag" not in response.headers
    assert response.headers.get_list("vary") == ["Accept, Accept-Encoding"]
