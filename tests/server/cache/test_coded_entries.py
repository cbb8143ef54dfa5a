"""Entries stored with their compressed streams: computed once when stored, read back
from either store, and counted against the in-process store's bytes."""

from __future__ import annotations

from functools import partial

import brotli
import orjson

from schema.cache_policy import CachePolicy
from server.cache.cached_response import Produced, ResponseKey, with_extensions
from server.cache.protocol import ResultCache
from server.cache.response_cache import ResponseCache
from server.cache.store_memory import InMemoryCacheStore
from server.http.codecs import Codecs
from server.http.open_streams import OpenStream, open_streams

KEY = ResponseKey.of("c" * 64, {}, None)
BODY = orjson.dumps({"data": {"products": [{"id": n, "name": f"Product {n}"} for n in range(300)]}})
CODECS = Codecs(zstd_level=3, brotli_level=3, gzip_level=3)


async def produce() -> Produced:
    return Produced(BODY, tags=frozenset({"Product:1"}))


async def fill(cache: ResponseCache) -> None:
    lookup = await cache.lookup(KEY, scope=None)
    await cache.fill(KEY, lookup, policy=CachePolicy(60), scope=None, produce=produce)


async def test_an_entry_is_stored_with_a_stream_per_coding(store: ResultCache) -> None:
    precoded: list[int] = []

    def precode(body: bytes) -> list[OpenStream]:
        precoded.append(len(body))
        return open_streams(CODECS, body, min_bytes=1024)

    cache = ResponseCache(store, precode=precode)
    await fill(cache)
    for _ in range(3):
        lookup = await cache.lookup(KEY, scope=None)
        entry = lookup.usable
        assert entry is not None
        assert [stream.coding for stream in entry.coded] == ["zstd", "br", "gzip"]
        served = with_extensions(entry.body, {"cost": {"actualQueryCost": 1}})
        coded = entry.coded_body("br", served)
        assert coded is not None
        assert brotli.decompress(coded) == served

    assert precoded == [len(BODY)]  # once, when stored; never on a hit


async def test_the_in_process_store_counts_the_streams_bytes() -> None:
    plain_store = InMemoryCacheStore(max_bytes=1024 * 1024)
    coded_store = InMemoryCacheStore(max_bytes=1024 * 1024)
    await fill(ResponseCache(plain_store))
    coded_cache = ResponseCache(coded_store, precode=partial(open_streams, CODECS, min_bytes=1024))
    await fill(coded_cache)
    entry = (await coded_cache.lookup(KEY, scope=None)).usable
    assert entry is not None

    streams = sum(len(stream.data) for stream in entry.coded)
    assert streams > 0
    # The streams, and the header line that says where they lie, on top of the plain entry.
    assert coded_store.size - plain_store.size >= streams
    assert coded_store.size - plain_store.size < streams + 200
