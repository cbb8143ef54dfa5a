"""GraphiQL's assets through the real app: hashed names, immutable, pre-compressed, 304, HEAD."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator

import brotli
import httpx
import pytest
import pytest_asyncio
import zstandard

from server.http.graphiql import SCRIPTS, STATIC_DIR, STYLESHEETS
from server.http.graphiql_assets import IMMUTABLE, hashed_names
from tests.conftest import Api, Database
from tests.server.apps import serve

ASSETS = "/graphiql/static"
BROWSER_ACCEPT = "text/html,application/xhtml+xml,*/*;q=0.8"
DECODE = {
    "zstd": lambda data: zstandard.ZstdDecompressor().decompressobj().decompress(data),
    "br": brotli.decompress,
    "gzip": gzip.decompress,
}


@pytest_asyncio.fixture
async def api(db: Database) -> AsyncIterator[Api]:
    async with serve(db) as api:
        yield api


async def raw(api: Api, url: str, *, method: str = "GET", **headers: str) -> httpx.Response:
    """The answer with its body as sent, not decoded."""
    response = await api.client.send(
        api.client.build_request(method, url, headers=headers), stream=True
    )
    response._content = b"".join([part async for part in response.aiter_raw()])
    await response.aclose()
    return response


async def test_the_page_links_hashed_names_that_are_immutable(api: Api) -> None:
    page = await api.client.get("/graphql", headers={"Accept": BROWSER_ACCEPT})
    names = hashed_names(STATIC_DIR, (*STYLESHEETS, *SCRIPTS))

    assert "immutable" not in page.headers.get("cache-control", "")
    for name, hashed in names.items():
        assert f'"{ASSETS}/{hashed}"' in page.text
        assert hashed != name
        asset = await raw(api, f"{ASSETS}/{hashed}", **{"Accept-Encoding": "identity"})
        assert asset.status_code == 200
        assert asset.headers["cache-control"] == IMMUTABLE == "public, max-age=31536000, immutable"
        assert asset.content == (STATIC_DIR / name).read_bytes()


def test_a_changed_asset_gets_a_new_name() -> None:
    from server.http.graphiql_assets import hashed_name

    assert hashed_name("boot.js", b"one") != hashed_name("boot.js", b"two")
    assert hashed_name("boot.js", b"one").startswith("boot.")
    assert hashed_name("boot.js", b"one").endswith(".js")


@pytest.mark.parametrize("coding", ["zstd", "br", "gzip"])
async def test_assets_are_served_pre_compressed_in_the_negotiated_coding(
    api: Api, coding: str
) -> None:
    name = "react.production.min.js"
    url = f"{ASSETS}/{hashed_names(STATIC_DIR, (name,))[name]}"

    first = await raw(api, url, **{"Accept-Encoding": f"{coding}, identity;q=0.5"})
    again = await raw(api, url, **{"Accept-Encoding": coding})

    body = (STATIC_DIR / name).read_bytes()
    assert first.headers["content-encoding"] == coding
    assert first.headers["content-type"].startswith("text/javascript")
    assert first.headers["vary"] == "Accept-Encoding"
    assert int(first.headers["content-length"]) == len(first.content) < len(body) / 2
    assert DECODE[coding](first.content) == body
    assert again.content == first.content  # coded once, kept
    assert first.headers["etag"].endswith(f'-{coding}"')


async def test_a_held_asset_is_304_in_its_coding_and_head_matches_get(api: Api) -> None:
    url = f"{ASSETS}/{hashed_names(STATIC_DIR, ('boot.js',))['boot.js']}"
    got = await raw(api, url, **{"Accept-Encoding": "br"})
    held = await raw(api, url, **{"Accept-Encoding": "br", "If-None-Match": got.headers["etag"]})
    other = await raw(api, url, **{"Accept-Encoding": "gzip", "If-None-Match": got.headers["etag"]})
    head = await raw(api, url, method="HEAD", **{"Accept-Encoding": "br"})

    assert held.status_code == 304
    assert held.headers["etag"] == got.headers["etag"]
    assert held.content == b""
    assert other.status_code == 200
    assert other.headers["content-encoding"] == "gzip"
    assert head.status_code == 200
    assert head.content == b""
    for header in ("content-encoding", "content-length", "etag", "cache-control", "vary"):
        assert head.headers[header] == got.headers[header]


async def test_plain_names_are_revalidated_and_nothing_else_is_served(api: Api) -> None:
    plain = await raw(api, f"{ASSETS}/boot.js", **{"Accept-Encoding": "gzip"})
    build = await api.client.get(f"{ASSETS}/build/package.json")
    unknown = await api.client.get(f"{ASSETS}/boot.0123456789abcdef.js")
    posted = await api.client.post(f"{ASSETS}/boot.js")

    assert plain.headers["cache-control"] == "no-cache"
    assert plain.headers["content-encoding"] == "gzip"
    assert gzip.decompress(plain.content) == (STATIC_DIR / "boot.js").read_bytes()
    assert build.status_code == 404
    assert unknown.status_code == 404
    assert posted.status_code == 405
