"""The entity cache behind the by-id loaders (implements loaders.cache.EntityCache).

A batch of ids costs one round trip to the store for all of them (an MGET in
Redis), one statement for the misses only, and one pipelined write of what that
statement found. Records are kept as compact JSON arrays, tagged with their
shape so that a record whose fields changed between deploys reads as a miss.
Writes invalidate entities by the same change announcements as responses.

Example:
    cache = StoreEntityCache(store, ttl=300)
    loaders = Loaders(sessionmaker=sessionmaker, dialect=dialect, entity_cache=cache)
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import time
import typing
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

import orjson

from loaders.tags import Tagged, entity_tag
from server.cache.protocol import CacheUnavailable, ResultCache

R = TypeVar("R", bound=Tagged)

MAX_READ_SECONDS = 30.0
"""A batch that took longer than this to read stores nothing (its snapshot may be
older than the tombstones kept to catch a racing write)."""


@dataclasses.dataclass(frozen=True, slots=True)
class _Codec:
    shape: str
    names: tuple[str, ...]
    datetimes: frozenset[int]


_codecs: dict[type[Any], _Codec] = {}


def _codec(record: type[Any]) -> _Codec:
    known = _codecs.get(record)
    if known is not None:
        return known
    fields = dataclasses.fields(record)
    hints = typing.get_type_hints(record)
    names = tuple(f.name for f in fields)
    datetimes = frozenset(
        i
        for i, f in enumerate(fields)
        if datetime in (hints[f.name], *typing.get_args(hints[f.name]))
    )
    shape = hashlib.sha256(repr([(f.name, str(hints[f.name])) for f in fields]).encode())
    codec = _codecs[record] = _Codec(shape.hexdigest()[:8], names, datetimes)
    return codec


def encode_record(record: Any) -> bytes:
    codec = _codec(type(record))
    return orjson.dumps([codec.shape, *(getattr(record, name) for name in codec.names)])


def decode_record(record: type[R], raw: bytes) -> R | None:
    """The record encoded in `raw`; None when it was encoded for another shape."""
    codec = _codec(record)
    shape, *values = orjson.loads(raw)
    if shape != codec.shape or len(values) != len(codec.names):
        return None
    for i in codec.datetimes:
        if values[i] is not None:
            values[i] = datetime.fromisoformat(values[i])
    return record(*values)


class LookupCounter(typing.Protocol):
    """Told how many ids of each lookup were found in the cache and how many were not."""

    def counted(self, *, hits: int, misses: int) -> None: ...


class StoreEntityCache:
    """Entities of the by-id loaders in a ResultCache, for `ttl` seconds.

    The store failing or answering late is a miss for every id: the loaders
    read the database, and nothing is written.
    """

    def __init__(
        self, store: ResultCache, *, ttl: float, counter: LookupCounter | None = None
    ) -> None:
        self.store = store
        self.ttl = ttl
        self.counter = counter

    async def load(
        self,
        ids: list[int],
        record: type[R],
        fetch: Callable[[list[int]], Awaitable[list[R | None]]],
    ) -> list[R | None]:
        tags = [entity_tag(record, id_) for id_ in ids]
        started = time.monotonic()
        try:
            raws, snapshot = await self.store.get_entities(tags)
        except CacheUnavailable:
            if self.counter is not None:
                self.counter.counted(hits=0, misses=len(ids))
            return await fetch(ids)
        values = [None if raw is None else decode_record(record, raw) for raw in raws]
        misses = [id_ for id_, value in zip(ids, values, strict=True) if value is None]
        if self.counter is not None:
            self.counter.counted(hits=len(ids) - len(misses), misses=len(misses))
        if not misses:
            return values
        found = dict(zip(misses, await fetch(misses), strict=True))
        fresh = {
            entity_tag(record, id_): encode_record(value)
            for id_, value in found.items()
            if value is not None
        }
        if fresh and time.monotonic() - started < MAX_READ_SECONDS:
            with contextlib.suppress(CacheUnavailable):
                await self.store.put_entities(fresh, ttl=self.ttl, since=snapshot)
        return [
            found[id_] if value is None else value for id_, value in zip(ids, values, strict=True)
        ]
