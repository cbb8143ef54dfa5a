"""Response compression through the real app: negotiation, threshold, Vary, ETags and 304s,
HEAD, and a real `storefront serve` process."""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import brotli
import httpx
import pytest
import pytest_asyncio
import zstandard

from server.http.accept_encoding import coded_etag
from tests.cache_support import cached_app
from tests.conftest import Api, Database
from tests.factories import Factory
from tests.live_server import live_server
from tests.server.apps import serve

CATEGORIES = "{ categories { id name } }"
DECODE = {
    "zstd": lambda data: zstandard.ZstdDecompressor().decompressobj().decompress(data),
    "br": brotli.decompress,
    "gzip": gzip.decompress,
}


async def raw(api: Api, url: str, *, method: str = "GET", **headers: str) -> httpx.Response:
    """The answer with its body as sent (httpx leaves `content` coded when streamed raw)."""
    request = api.client.build_request(method, url, headers=headers)
    response = await api.client.send(request, stream=True)
    response._content = b"".join([part async for part in response.aiter_raw()])
    await response.aclose()
    return response


def answer(body: bytes) -> Any:
    """A GraphQL answer without its extensions (the rate-limit bucket changes per request)."""
    parsed = json.loads(body)
    parsed.pop("extensions")
    return parsed


def decoded(response: httpx.Response) -> bytes:
    coding = response.headers.get("content-encoding")
    return response.content if coding is None else DECODE[coding](response.content)


@pytest_asyncio.fixture
async def api(db: Database, factory: Factory) -> AsyncIterator[Api]:
    """The app over 40 categories: their list is ~2.5 KB of JSON, over the 1024-byte default."""
    for number in range(40):
        await factory.category(name=f"Category number {number:02d} of the catalogue")
    async with serve(db) as api:
        yield api


def categories_url() -> str:
    return str(httpx.URL("/graphql", params={"query": CATEGORIES}))


@pytest.mark.parametrize("coding", ["zstd", "br", "gzip"])
async def test_each_coding_is_sent_to_a_client_asking_for_it_and_decodes(
    api: Api, coding: str
) -> None:
    plain = await raw(api, categories_url(), **{"Accept-Encoding": "identity"})
    coded = await raw(api, categories_url(), **{"Accept-Encoding": coding})

    assert "content-encoding" not in plain.headers
    assert len(plain.content) > 1024
    assert coded.headers["content-encoding"] == coding
    assert int(coded.headers["content-length"]) == len(coded.content) < len(plain.content) / 3
    assert answer(decoded(coded)) == answer(plain.content)
    assert coded.headers.get_list("vary") == ["Accept, Accept-Encoding"]


@pytest.mark.parametrize(
    ("accept_encoding", "coding"),
    [
        ("gzip, deflate, br, zstd", "zstd"),  # Chromium: a tie goes to zstd
        ("gzip, br", "br"),  # a tie without zstd goes to br
        ("gzip;q=1.0, br;q=0.5, zstd;q=0.1", "gzip"),  # the client's order, not ours
        ("br;q=0.9, zstd;q=0.8, gzip", "gzip"),
        ("*", "zstd"),
        ("zstd;q=0, *;q=0.5", "br"),  # `*` is every coding not named
        ("gzip;q=0.4, identity;q=0.5", None),  # identity preferred
        ("identity", None),
        ("deflate, compress", None),  # nothing we have
        ("gzip;q=0", None),
        ("br;q=oops, gzip", "gzip"),  # a malformed weight drops that item only
        ("GZIP", "gzip"),  # codings are case-insensitive
    ],
)
async def test_the_clients_weights_choose_the_coding(
    api: Api, accept_encoding: str, coding: str | None
) -> None:
    response = await raw(api, categories_url(), **{"Accept-Encoding": accept_encoding})

    assert response.headers.get("content-encoding") == coding
    assert response.headers.get_list("vary") == ["Accept, Accept-Encoding"]
    assert b'"Category number 39' in decoded(response)


async def test_no_accept_encoding_gets_identity(api: Api) -> None:
    request = api.client.build_request("GET", categories_url())
    del request.headers["accept-encoding"]
    response = await api.client.send(request)

    assert "content-encoding" not in response.headers
    assert response.headers.get_list("vary") == ["Accept, Accept-Encoding"]


async def test_a_small_answer_goes_as_it_is_unless_identity_is_refused(api: Api) -> None:
    small = str(httpx.URL("/graphql", params={"query": "{ __typename }"}))

    accepted = await raw(api, small, **{"Accept-Encoding": "zstd, br, gzip"})
    refused = await raw(api, small, **{"Accept-Encoding": "gzip, identity;q=0"})

    assert "content-encoding" not in accepted.headers
    assert accepted.content.startswith(b'{"data":{"__typename":"Query"}')
    # The threshold is a server choice; a client refusing identity gets a coded body.
    assert refused.headers["content-encoding"] == "gzip"
    assert decoded(refused).startswith(b'{"data":{"__typename":"Query"}')


async def test_threshold_and_switch_are_settings(db: Database) -> None:
    small = str(httpx.URL("/graphql", params={"query": "{ __typename }"}))
    async with serve(db, COMPRESSION_MIN_BYTES="0") as api:
        every = await raw(api, small, **{"Accept-Encoding": "br"})
    async with serve(db, COMPRESSION_ENABLED="false") as api:
        never = await raw(api, "/graphql/schema.graphql", **{"Accept-Encoding": "br"})

    assert every.headers["content-encoding"] == "br"
    assert "content-encoding" not in never.headers
    assert len(never.content) > 1024
    assert "vary" not in never.headers


async def test_a_plain_text_answer_is_coded_and_head_says_the_same_without_a_length(
    api: Api,
) -> None:
    got = await raw(api, "/graphql/schema.graphql", **{"Accept-Encoding": "br"})
    head = await raw(api, "/graphql/schema.graphql", method="HEAD", **{"Accept-Encoding": "br"})

    assert got.headers["content-encoding"] == "br"
    assert b"type Query" in decoded(got)
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-encoding"] == "br"
    assert head.headers["vary"] == "Accept-Encoding"
    # Known only once coded: a HEAD answer may leave it out (RFC 9110 §9.3.2).
    assert "content-length" not in head.headers


async def test_each_coded_answer_has_its_own_etag_and_304s_hold_per_coding(
    db: Database, factory: Factory
) -> None:
    for number in range(40):
        await factory.category(name=f"Category number {number:02d} of the catalogue")
    async with cached_app(db, "memory") as api:
        url = categories_url()
        plain = await raw(api, url, **{"Accept-Encoding": "identity"})
        br = await raw(api, url, **{"Accept-Encoding": "br"})
        held_br = await raw(
            api, url, **{"Accept-Encoding": "br", "If-None-Match": br.headers["etag"]}
        )
        now_gzip = await raw(
            api, url, **{"Accept-Encoding": "gzip", "If-None-Match": br.headers["etag"]}
        )
        held_plain = await raw(
            api, url, **{"Accept-Encoding": "identity", "If-None-Match": plain.headers["etag"]}
        )
        weak = await raw(
            api, url, **{"Accept-Encoding": "br", "If-None-Match": f"W/{br.headers['etag']}"}
        )

    assert br.headers["etag"] == coded_etag(plain.headers["etag"], "br")
    assert br.headers["etag"].endswith('-br"')
    assert held_br.status_code == 304
    assert held_br.headers["etag"] == br.headers["etag"]
    assert held_br.headers.get_list("vary") == ["Accept, Accept-Encoding"]
    assert held_br.content == b""
    # The client holds the br bytes but now negotiates gzip: it gets the gzip representation.
    assert now_gzip.status_code == 200
    assert now_gzip.headers["content-encoding"] == "gzip"
    assert now_gzip.headers["etag"] == coded_etag(plain.headers["etag"], "gzip")
    assert held_plain.status_code == 304
    assert held_plain.headers["etag"] == plain.headers["etag"]
    assert weak.status_code == 304  # If-None-Match compares weakly


def test_a_real_server_sends_each_coding(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'none.db'}"}
    with live_server(env, ready_path="/livez") as server:  # never migrated: never ready
        answers = {
            coding: httpx.get(
                f"{server.url}/graphql/schema.graphql", headers={"Accept-Encoding": coding}
            )
            for coding in ("zstd", "br", "gzip", "identity")
        }

    sdl = answers["identity"].content
    assert len(sdl) > 1024
    for coding in ("zstd", "br", "gzip"):
        assert answers[coding].headers["content-encoding"] == coding
        assert answers[coding].content == sdl  # decoded by httpx
