"""Cached answers stored compressed: a hit in each coding is the stored stream closed with
its own extensions, compresses nothing, and keeps Vary, ETags and 304s; in process and
in Redis, through the real endpoint."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import pytest_asyncio

from server.http import codecs
from server.http.accept_encoding import coded_etag
from tests.cache_support import CACHE_BACKENDS, cached_app
from tests.conftest import Api, Database
from tests.factories import Factory
from tests.live_server import live_server
from tests.server.http.test_compression import DECODE, raw

CATEGORIES = "{ categories { id name } }"
CODINGS = ("zstd", "br", "gzip")


class Counted:
    """Every compression a codec does, by coding: one-shot bodies and streams begun."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def wrap(self, codec: codecs.Codec) -> codecs.Codec:
        def compress(data: bytes) -> bytes:
            self.calls.append(codec.name)
            return codec.compress(data)

        def encoder() -> codecs.Encoder:
            self.calls.append(codec.name)
            return codec.encoder()

        return replace(codec, compress=compress, encoder=encoder)


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> Counted:
    """Counts the codec calls of an app built after it (middleware and cache alike)."""
    counter = Counted()
    for name in CODINGS:
        factory = getattr(codecs, name)
        monkeypatch.setattr(
            codecs, name, lambda level, factory=factory: counter.wrap(factory(level))
        )
    return counter


@pytest.fixture(params=CACHE_BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.param
    return backend


@pytest_asyncio.fixture
async def api(db: Database, factory: Factory, backend: str, counted: Counted) -> AsyncIterator[Api]:
    """The cached app over 40 categories: ~2.5 KB of JSON, over the 1024-byte threshold."""
    for number in range(40):
        await factory.category(name=f"Category number {number:02d} of the catalogue")
    async with cached_app(db, backend) as api:
        yield api


def url() -> str:
    return str(httpx.URL("/graphql", params={"query": CATEGORIES}))


def data_part(body: bytes) -> bytes:
    """The answer's bytes before its extensions (those are per request)."""
    head, found, _ = body.rpartition(b',"extensions":')
    assert found
    return head


def cost(body: bytes) -> Any:
    return json.loads(body)["extensions"]["cost"]


async def test_a_hit_in_each_coding_decodes_to_the_uncached_answer_with_its_own_cost(
    api: Api,
) -> None:
    fresh = await raw(api, url(), **{"Accept-Encoding": "identity", "Cache-Control": "no-cache"})
    assert fresh.headers["x-cache"] == "MISS"
    for coding in CODINGS:
        hit = await raw(api, url(), **{"Accept-Encoding": coding})
        decoded = DECODE[coding](hit.content)

        assert hit.headers["x-cache"] == "HIT"
        assert hit.headers["content-encoding"] == coding
        assert int(hit.headers["content-length"]) == len(hit.content) < len(decoded) / 3
        assert data_part(decoded) == data_part(fresh.content)
        # Exactly the answer's bytes, then this request's own extensions, closed.
        own = orjson.dumps({"cost": cost(decoded)})
        assert decoded == data_part(fresh.content) + b',"extensions":' + own + b"}"
        assert cost(decoded)["requestedQueryCost"] == cost(fresh.content)["requestedQueryCost"]
        # httpx decodes it as any client would.
        assert (await api.client.get(url(), headers={"Accept-Encoding": coding})).content[
            : len(data_part(decoded))
        ] == data_part(decoded)


async def test_a_hit_compresses_nothing_while_an_uncached_answer_is_compressed(
    api: Api, counted: Counted
) -> None:
    await raw(api, url(), **{"Accept-Encoding": "identity"})  # the miss: stored, coded once
    assert sorted(counted.calls) == sorted(CODINGS)
    counted.calls.clear()

    for coding in CODINGS:
        hit = await raw(api, url(), **{"Accept-Encoding": coding})
        assert hit.headers["x-cache"] == "HIT"
        assert hit.headers["content-encoding"] == coding
    assert counted.calls == []

    # The counter sees compression where it happens: an answer past the cache is coded.
    schema = await raw(
        api,
        str(httpx.URL("/graphql", params={"query": "{ __schema { types { name } } }"})),
        **{"Accept-Encoding": "br", "Cache-Control": "no-cache"},
    )
    assert schema.headers["content-encoding"] == "br"
    assert "br" in counted.calls


async def test_a_hit_keeps_vary_and_the_etag_of_its_coding_and_304s_per_coding(
    api: Api,
) -> None:
    plain = await raw(api, url(), **{"Accept-Encoding": "identity"})
    request = api.client.build_request("GET", url())
    del request.headers["accept-encoding"]  # none at all: identity, from the cache
    plain_hit = await api.client.send(request)
    assert plain_hit.headers["x-cache"] == "HIT"
    assert plain_hit.headers.get_list("vary") == ["Accept, Accept-Encoding"]
    assert "content-encoding" not in plain_hit.headers
    assert data_part(plain_hit.content) == data_part(plain.content)
    assert plain_hit.headers["etag"] == plain.headers["etag"]
    for coding in CODINGS:
        hit = await raw(api, url(), **{"Accept-Encoding": coding})
        held = await raw(
            api, url(), **{"Accept-Encoding": coding, "If-None-Match": hit.headers["etag"]}
        )
        other = "gzip" if coding != "gzip" else "br"
        moved = await raw(
            api, url(), **{"Accept-Encoding": other, "If-None-Match": hit.headers["etag"]}
        )

        assert hit.headers["etag"] == coded_etag(plain.headers["etag"], coding)
        assert hit.headers.get_list("vary") == ["Accept, Accept-Encoding"]
        assert held.status_code == 304
        assert held.content == b""
        assert held.headers["etag"] == hit.headers["etag"]
        assert held.headers.get_list("vary") == ["Accept, Accept-Encoding"]
        assert moved.status_code == 200
        assert moved.headers["content-encoding"] == other
        assert moved.headers["etag"] == coded_etag(plain.headers["etag"], other)
    held_plain = await raw(
        api, url(), **{"Accept-Encoding": "identity", "If-None-Match": plain.headers["etag"]}
    )
    assert held_plain.status_code == 304


async def test_without_compression_nothing_coded_is_stored(
    db: Database, factory: Factory, counted: Counted
) -> None:
    for number in range(40):
        await factory.category(name=f"Category number {number:02d} of the catalogue")
    async with cached_app(db, "memory", COMPRESSION_ENABLED="false") as api:
        await raw(api, url())
        hit = await raw(api, url(), **{"Accept-Encoding": "br"})

    assert hit.headers["x-cache"] == "HIT"
    assert "content-encoding" not in hit.headers
    assert counted.calls == []


def test_a_real_server_sends_stored_codings_that_curl_and_httpx_decode(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}", "CACHE_ENABLED": "true"}
    query = "{ categories { id name } products(first: 40) { nodes { name priceCents } } }"
    with live_server(env, args=("--demo",)) as server:
        target = str(httpx.URL(f"{server.url}/graphql", params={"query": query}))
        plain = httpx.get(target, headers={"Accept-Encoding": "identity"})
        hits = {
            coding: httpx.get(target, headers={"Accept-Encoding": coding}) for coding in CODINGS
        }
        curled: dict[str, bytes] = {}
        if shutil.which("curl") is not None:
            for coding in CODINGS:
                curled[coding] = subprocess.run(
                    ["curl", "-sf", "--compressed", "-H", f"Accept-Encoding: {coding}", target],
                    capture_output=True,
                    check=True,
                ).stdout

    assert len(plain.content) > 1024
    for coding, hit in hits.items():
        assert hit.headers["x-cache"] == "HIT"
        assert hit.headers["content-encoding"] == coding
        assert data_part(hit.content) == data_part(plain.content)  # decoded by httpx
        assert "cost" in json.loads(hit.content)["extensions"]
    for body in curled.values():  # libcurl's own zstd, brotli and zlib
        assert data_part(body) == data_part(plain.content)
        assert "cost" in json.loads(body)["extensions"]
