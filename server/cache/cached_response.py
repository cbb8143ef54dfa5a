"""A cached response and the values around it: its key, what a lookup found,
what an execution produced, and what is served.

A response is keyed by (document hash, canonical variables, operation name,
scope), the scope being PUBLIC or one viewer. An execution becomes a
`Produced`: the payload's bytes without the per-request `extensions` (those,
such as the cost, are appended as the bytes go out, so a hit is never
re-serialized), whether it may be stored, whether it failed because the
database did (a stale entry may then stand in), and the tags its loaders
recorded.

A stored response may carry its prefix (all but the closing `}`) already
compressed in each content coding, as open streams (server/http/open_streams.py):
a hit in a coding closes the stream with its own extensions, compressing nothing.

Example:
    key = ResponseKey.of(document_sha256, variables, operation_name)
    produced = produce_from(result, body=orjson.dumps(payload), tags=loaders.tags)
    body = with_extensions(served.body, {"cost": bill.cost()})
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import orjson
from graphql import ExecutionResult

from resolvers.viewer import Viewer
from schema.cache_policy import NO_STORE, CachePolicy
from schema.errors import is_database_unavailable
from server.cache.protocol import Snapshot
from server.http.open_streams import OpenStream, close_stream

PUBLIC = "public"


class CacheState(Enum):
    """What `X-Cache` says: from the cache, from it past its max-age, run, or not cached."""

    HIT = "HIT"
    STALE = "STALE"
    MISS = "MISS"
    BYPASS = "BYPASS"

    def __init__(self, value: str) -> None:
        # The metrics' label, read as a plain attribute: every answer is counted by it.
        self.label = value.lower()


def viewer_scope(viewer: Viewer) -> str | None:
    """The private scope of `viewer` (its role included, so a changed role starts
    afresh); None for an anonymous caller, who is never served a private entry."""
    user = viewer.user
    return None if user is None else f"user:{user.id}:{user.role}"


@dataclass(frozen=True, slots=True)
class ResponseKey:
    """What identifies a response apart from its scope."""

    document: str
    variables: str
    operation: str

    @classmethod
    def of(
        cls, document_sha256: str, variables: Mapping[str, Any] | None, operation: str | None
    ) -> ResponseKey:
        canonical = orjson.dumps(variables or {}, option=orjson.OPT_SORT_KEYS).decode()
        return cls(document_sha256, canonical, operation or "")

    def scoped(self, scope: str) -> str:
        if len(self.variables) > _REMEMBERED_VARIABLES:
            return _storage_key.__wrapped__(self, scope)
        return _storage_key(self, scope)


_REMEMBERED_VARIABLES = 1024
"""Keys with longer variables are hashed each time: the memo stays under 4096 x ~1 KB."""


@functools.lru_cache(maxsize=4096)  # a repeated request's keys: two hashes saved per hit
def _storage_key(key: ResponseKey, scope: str) -> str:
    material = "\0".join((key.document, key.variables, key.operation, scope))
    return hashlib.sha256(material.encode()).hexdigest()


def etag_of(body: bytes) -> str:
    """A strong entity tag of `body`."""
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


@dataclass(frozen=True, slots=True)
class CachedResponse:
    """A stored response: its bytes, entity tag, policy and when it was stored, and
    its prefix coded in each content coding (`coded`, empty when compression is off
    or the answer too small)."""

    body: bytes
    etag: str
    max_age: int
    private: bool
    stored_at: float
    meta: Mapping[str, Any] = field(default_factory=dict)
    coded: tuple[OpenStream, ...] = ()

    def age(self, now: float) -> float:
        return max(0.0, now - self.stored_at)

    def coded_body(self, coding: str, served: bytes) -> bytes | None:
        """`served` (this entry's body with extensions appended) in `coding`, closed
        from the stored stream; None without a stream of that coding."""
        prefix = len(self.body) - 1
        for stream in self.coded:
            if stream.coding == coding and served.startswith(memoryview(self.body)[:prefix]):
                return close_stream(stream, served[prefix:])
        return None

    def encode(self) -> bytes:
        """A header line (JSON), then the body, then each coded stream's bytes
        (`b`: the body's length; `c`: per stream its coding, length, CRC and size)."""
        header = {
            "e": self.etag,
            "m": self.max_age,
            "p": self.private,
            "s": self.stored_at,
            "x": self.meta,
        }
        if not self.coded:
            return orjson.dumps(header) + b"\n" + self.body
        header["b"] = len(self.body)
        header["c"] = [[s.coding, len(s.data), s.crc, s.size] for s in self.coded]
        streams = b"".join(stream.data for stream in self.coded)
        return orjson.dumps(header) + b"\n" + self.body + streams

    @classmethod
    def decode(cls, raw: bytes) -> CachedResponse:
        header, _, rest = raw.partition(b"\n")
        h = orjson.loads(header)
        if "c" not in h:
            return cls(rest, h["e"], h["m"], h["p"], h["s"], h["x"])
        at = h["b"]
        coded = []
        for coding, length, crc, size in h["c"]:
            coded.append(OpenStream(coding, rest[at : at + length], crc, size))
            at += length
        return cls(rest[: h["b"]], h["e"], h["m"], h["p"], h["s"], h["x"], tuple(coded))


@dataclass(frozen=True, slots=True)
class Lookup:
    """The outcome of a lookup.

    `usable` is an entry to serve now (with `state` HIT or STALE); `fallback` an
    expired one that may stand in for a failure; `snapshot`, taken on a miss
    before anything runs, is what a fresh answer is stored against. `bypass`:
    the store could not be reached.
    """

    state: CacheState
    usable: CachedResponse | None = None
    fallback: CachedResponse | None = None
    snapshot: Snapshot | None = None

    @property
    def bypass(self) -> bool:
        return self.state is CacheState.BYPASS


@dataclass(frozen=True, slots=True)
class Produced:
    """A freshly executed response, as the view hands it to the cache.

    `storable`: a query answered without errors. `failed`: it failed in a way a
    stale entry may cover (the database is down, a timeout).
    """

    body: bytes
    storable: bool = True
    failed: bool = False
    tags: frozenset[str] = frozenset()
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Served:
    """What to answer: the bytes, and X-Cache; the entry they came from or went into;
    what was produced (None when served from the cache); and the policy under which
    HTTP caches may keep them (NO_STORE for anything not cacheable)."""

    body: bytes
    state: CacheState
    entry: CachedResponse | None = None
    produced: Produced | None = None
    policy: CachePolicy = NO_STORE

    @classmethod
    def cached(cls, entry: CachedResponse, state: CacheState = CacheState.HIT) -> Served:
        return cls(entry.body, state, entry=entry, policy=CachePolicy(entry.max_age, entry.private))


def failed_for_infrastructure(result: ExecutionResult) -> bool:
    """Whether an error of `result` came from the database being down or too slow."""
    return any(is_database_unavailable(error.original_error) for error in result.errors or ())


def produce_from(
    result: ExecutionResult,
    *,
    body: bytes,
    tags: Iterable[str],
    meta: Mapping[str, Any] | None = None,
    timed_out: bool = False,
) -> Produced:
    """The `Produced` of an executed query whose payload serialized to `body`."""
    return Produced(
        body,
        storable=not result.errors and not timed_out,
        failed=timed_out or failed_for_infrastructure(result),
        tags=frozenset(tags),
        meta=dict(meta or {}),
    )


def with_extensions(body: bytes, extensions: Mapping[str, Any] | None) -> bytes:
    """`body`, a serialized JSON object, with `extensions` added as its last member."""
    if not extensions:
        return body
    # One copy of the body (a cached dashboard is ~45 KB), not one per `+`.
    return b"".join((memoryview(body)[:-1], b',"extensions":', orjson.dumps(extensions), b"}"))
