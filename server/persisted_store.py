"""Persisted-query stores: in process (one process only) and in Redis (shared).

Example:
    store = RedisPersistedQueryStore(redis, apq_ttl_seconds=86_400)
    await store.put_automatic(sha256_hex(text), text)
    await store.get_automatic(sha256_hex(text))  # -> text, from any process

Redis layout (every key under `sf:v1:pq:`):

    sf:v1:pq:apq:<sha256>       string, the APQ text; expires after the APQ TTL
    sf:v1:pq:trusted            hash, id -> {"document", "name", "sha256"} as JSON; no TTL
    sf:v1:pq:trusted-sha256     hash, sha256 -> id of the trusted document; no TTL
    sf:v1:pq:unknown            hash, sha256 -> sightings of untrusted documents (audit)
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from redis.asyncio import Redis

from schema.persisted import TrustedDocument

NAMESPACE = "sf:v1:pq"
DEFAULT_MAX_UNKNOWN = 10_000

# Counts a sighting unless the table is full of other documents: atomic, so two
# processes cannot both slip past the bound.
_NOTE_UNKNOWN = """
local known = redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1
if known or redis.call('HLEN', KEYS[1]) < tonumber(ARGV[2]) then
  return redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
end
return 0
"""


class InMemoryPersistedQueryStore:
    """A store for one process: APQ entries in an LRU bounded by count and bytes.

    Trusted documents are never evicted: they are what an operator imported.
    """

    def __init__(
        self,
        *,
        max_entries: int = 10_000,
        max_bytes: int = 32 * 1024 * 1024,
        apq_ttl_seconds: int | None = None,
        max_unknown: int = DEFAULT_MAX_UNKNOWN,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.apq_ttl_seconds = apq_ttl_seconds
        self.max_unknown = max_unknown
        self._clock = clock
        self._automatic: OrderedDict[str, tuple[str, float | None]] = OrderedDict()
        self._automatic_bytes = 0
        self._trusted: dict[str, TrustedDocument] = {}
        self._trusted_by_sha256: dict[Any, Any] = {}
        self._unknown: dict[str, int] = {}

    @property
    def automatic_bytes(self) -> int:
        """Characters held by APQ entries (what the byte bound limits)."""
        return self._automatic_bytes

    def __len__(self) -> int:
        return len(self._automatic)

    async def get_automatic(self, sha256: str) -> str | None:
        entry = self._automatic.get(sha256)
        if entry is None:
            return None
        document, expires_at = entry
        if expires_at is not None and self._clock() >= expires_at:
            self._drop(sha256)
            return None
        self._automatic.move_to_end(sha256)
        return document

    async def put_automatic(self, sha256: str, document: str) -> None:
        if len(document) > self.max_bytes:
            return
        if sha256 in self._automatic:
            self._drop(sha256)
        ttl = self.apq_ttl_seconds
        self._automatic[sha256] = (document, None if ttl is None else self._clock() + ttl)
        self._automatic_bytes += len(document)
        while len(self._automatic) > self.max_entries or self._automatic_bytes > self.max_bytes:
            self._drop(next(iter(self._automatic)))

    def _drop(self, sha256: str) -> None:
        document, _ = self._automatic.pop(sha256)
        self._automatic_bytes -= len(document)

    async def get_trusted(self, key: str) -> TrustedDocument | None:
        found = self._trusted.get(key)
        if found is None and key in self._trusted_by_sha256:
            found = self._trusted.get(self._trusted_by_sha256[key])
        return found

    async def put_trusted(self, documents: Iterable[TrustedDocument]) -> None:
        for document in documents:
            self._trusted[document.id] = document
            self._trusted_by_sha256[document.sha256] = document.id

    async def list_trusted(self) -> list[TrustedDocument]:
        return sorted(self._trusted.values(), key=lambda d: d.id)

    async def remove_trusted(self, ids: Iterable[str]) -> int:
        removed = 0
        for document_id in ids:
            document = self._trusted.pop(document_id, None)
            if document is None:
                continue
            removed += 1
            if self._trusted_by_sha256.get(document.sha256) == document_id:
                del self._trusted_by_sha256[document.sha256]
        return removed

    async def note_unknown(self, sha256: str) -> int:
        if sha256 not in self._unknown and len(self._unknown) >= self.max_unknown:
            return 0
        self._unknown[sha256] = self._unknown.get(sha256, 0) + 1
        return self._unknown[sha256]

    async def unknown_counts(self) -> dict[str, int]:
        return dict(self._unknown)

    async def close(self) -> None:
        return None


class RedisPersistedQueryStore:
    """A store shared by every worker and instance through one Redis database."""

    def __init__(
        self,
        redis: Redis,
        *,
        apq_ttl_seconds: int,
        namespace: str = NAMESPACE,
        max_unknown: int = DEFAULT_MAX_UNKNOWN,
        owns_client: bool = False,
    ) -> None:
        self.redis = redis
        self.apq_ttl_seconds = apq_ttl_seconds
        self.namespace = namespace
        self.max_unknown = max_unknown
        self._owns_client = owns_client
        self._trusted_key = f"{namespace}:trusted"
        self._by_sha256_key = f"{namespace}:trusted-sha256"
        self._unknown_key = f"{namespace}:unknown"
        self._note_unknown = redis.register_script(_NOTE_UNKNOWN)

    def automatic_key(self, sha256: str) -> str:
        return f"{self.namespace}:apq:{sha256}"

    async def get_automatic(self, sha256: str) -> str | None:
        return _text(await self.redis.get(self.automatic_key(sha256)))

    async def put_automatic(self, sha256: str, document: str) -> None:
        await self.redis.set(self.automatic_key(sha256), document, ex=self.apq_ttl_seconds)

    async def get_trusted(self, key: str) -> TrustedDocument | None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hget(self._trusted_key, key)
            pipe.hget(self._by_sha256_key, key)
            by_id, aliased_id = await pipe.execute()
        if by_id is not None:
            return _decode(key, by_id)
        if aliased_id is None:
            return None
        document_id = _text(aliased_id) or ""
        raw = await self.redis.hget(self._trusted_key, document_id)
        return None if raw is None else _decode(document_id, raw)

    async def put_trusted(self, documents: Iterable[TrustedDocument]) -> None:
        records: dict[Any, Any] = {}
        by_sha256: dict[Any, Any] = {}
        for document in documents:
            records[document.id] = orjson.dumps(
                {"document": document.document, "name": document.name, "sha256": document.sha256}
            )
            by_sha256[document.sha256] = document.id
        if not records:
            return
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._trusted_key, mapping=records)
            pipe.hset(self._by_sha256_key, mapping=by_sha256)
            await pipe.execute()

    async def list_trusted(self) -> list[TrustedDocument]:
        records: dict[Any, Any] = await self.redis.hgetall(self._trusted_key)
        documents = [_decode(_text(key) or "", raw) for key, raw in records.items()]
        return sorted(documents, key=lambda d: d.id)

    async def remove_trusted(self, ids: Iterable[str]) -> int:
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return 0
        raws = await self.redis.hmget(self._trusted_key, wanted)
        found = {i: _decode(i, raw) for i, raw in zip(wanted, raws, strict=True) if raw is not None}
        if not found:
            return 0
        shas = [d.sha256 for d in found.values()]
        owners = await self.redis.hmget(self._by_sha256_key, shas)
        stale = [sha for sha, owner in zip(shas, owners, strict=True) if _text(owner) in found]
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hdel(self._trusted_key, *found)
            if stale:
                pipe.hdel(self._by_sha256_key, *stale)
            await pipe.execute()
        return len(found)

    async def note_unknown(self, sha256: str) -> int:
        count = await self._note_unknown(keys=[self._unknown_key], args=[sha256, self.max_unknown])
        return int(count)

    async def unknown_counts(self) -> dict[str, int]:
        counts: dict[Any, Any] = await self.redis.hgetall(self._unknown_key)
        return {_text(key) or "": int(value) for key, value in counts.items()}

    async def close(self) -> None:
        if self._owns_client:
            await self.redis.aclose()


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


def _decode(document_id: str, raw: bytes | str) -> TrustedDocument:
    record = orjson.loads(raw)
    return TrustedDocument(
        id=document_id, document=record["document"], name=record["name"], sha256=record["sha256"]
    )
