"""Persisted-query stores: in process (one process only) and in Redis (shared).

Both bound what clients can make them keep: each registrant (a client key) may
register `registrations_per_client` new documents per
`registration_window_seconds`, each kept `apq_ttl_seconds`.

Example:
    store = RedisPersistedQueryStore(redis, apq_ttl_seconds=86_400)
    await store.put_automatic(sha256_hex(text), text, registrant="ip:203.0.113.7")
    await store.get_automatic(sha256_hex(text))  # -> text, from any process

Redis layout (every key under `sf:v1:pq:`):

    sf:v1:pq:apq:<sha256>           string, the APQ text; expires after the APQ TTL
    sf:v1:pq:apq-quota:<client>     string, new registrations in the client's window;
                                    expires with the window
    sf:v1:pq:trusted                hash, id -> {"document", "name", "sha256"} as JSON; no TTL
    sf:v1:pq:trusted-sha256         hash, sha256 -> id of the trusted document; no TTL
    sf:v1:pq:unknown                hash, sha256 -> sightings of untrusted documents (audit)

Every Redis call goes through a `RedisGuard` (server/redis_guard.py): bounded by
`timeout`, refused at once while its breaker is open, and failing as
PersistedQueryStoreUnavailable.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from cachetools import Cache, LRUCache, TTLCache
from redis.asyncio import Redis

from server.persisted.protocol import PersistedQueryStoreUnavailable, TrustedDocument
from server.redis_guard import RedisGuard

logger = logging.getLogger("storefront.persisted")

NAMESPACE = "sf:v1:pq"
DEFAULT_MAX_UNKNOWN = 10_000
DEFAULT_REGISTRATIONS = 100
DEFAULT_WINDOW_SECONDS = 3600
MAX_REGISTRANTS = 100_000

# KEYS: the entry, the registrant's counter. ARGV: document, its TTL (s), quota,
# window (s). A document already stored costs no quota and is left as it is (a
# client refreshing its TTL forever would escape the bound); a new one is stored
# only while the registrant's count for its window is under the quota.
_REGISTER = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 1
end
local used = tonumber(redis.call('GET', KEYS[2]) or '0')
if used >= tonumber(ARGV[3]) then
  return 0
end
redis.call('INCR', KEYS[2])
if redis.call('TTL', KEYS[2]) < 0 then
  redis.call('EXPIRE', KEYS[2], ARGV[4])
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1
"""

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
        registrations_per_client: int = DEFAULT_REGISTRATIONS,
        registration_window_seconds: float = DEFAULT_WINDOW_SECONDS,
        max_unknown: int = DEFAULT_MAX_UNKNOWN,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.apq_ttl_seconds = apq_ttl_seconds
        self.registrations_per_client = registrations_per_client
        self.registration_window_seconds = registration_window_seconds
        self.max_unknown = max_unknown
        self._clock = clock
        # registrant -> (registrations in its window, window ends at)
        self._registrations: dict[str, tuple[int, float]] = {}
        # sha256 -> text, an LRU bounded in characters (and below by count, in
        # put_automatic); each entry expires `apq_ttl_seconds` after it was stored.
        self._automatic: Cache[str, str] = (
            LRUCache[str, str](maxsize=max_bytes, getsizeof=len)
            if apq_ttl_seconds is None
            else TTLCache[str, str](
                maxsize=max_bytes, ttl=apq_ttl_seconds, timer=clock, getsizeof=len
            )
        )
        self._trusted: dict[str, TrustedDocument] = {}
        self._trusted_by_sha256: dict[Any, Any] = {}
        self._unknown: dict[str, int] = {}

    @property
    def automatic_bytes(self) -> int:
        """Characters held by APQ entries (what the byte bound limits)."""
        return int(self._automatic.currsize)

    def __len__(self) -> int:
        return len(self._automatic)

    async def get_automatic(self, sha256: str) -> str | None:
        return self._automatic.get(sha256)  # None once expired; a hit is now most recent

    async def put_automatic(self, sha256: str, document: str, *, registrant: str) -> bool:
        if len(document) > self.max_bytes:
            return False
        if await self.get_automatic(sha256) is not None:
            return True
        if not self._count_registration(registrant):
            return False
        self._automatic[sha256] = document  # evicts the least recent past max_bytes
        while len(self._automatic) > self.max_entries:
            self._automatic.popitem()
        return True

    def _count_registration(self, registrant: str) -> bool:
        """Counts one registration for `registrant` unless its window's quota is spent."""
        now = self._clock()
        used, ends_at = self._registrations.get(registrant, (0, 0.0))
        if now >= ends_at:
            used, ends_at = 0, now + self.registration_window_seconds
        if used >= self.registrations_per_client:
            return False
        self._registrations[registrant] = (used + 1, ends_at)
        if len(self._registrations) > MAX_REGISTRANTS:
            # Finished windows first (as their Redis keys expire), then the oldest.
            for key in [k for k, (_, end) in self._registrations.items() if end <= now]:
                del self._registrations[key]
            while len(self._registrations) > MAX_REGISTRANTS:
                del self._registrations[next(iter(self._registrations))]
        return True

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
        registrations_per_client: int = DEFAULT_REGISTRATIONS,
        registration_window_seconds: int = DEFAULT_WINDOW_SECONDS,
        timeout: float = 0.05,
        retry_after: float = 1.0,
        namespace: str = NAMESPACE,
        max_unknown: int = DEFAULT_MAX_UNKNOWN,
        owns_client: bool = False,
    ) -> None:
        self.redis = redis
        self.apq_ttl_seconds = apq_ttl_seconds
        self.registrations_per_client = registrations_per_client
        self.registration_window_seconds = registration_window_seconds
        self.namespace = namespace
        self.max_unknown = max_unknown
        self.guard = RedisGuard(
            "persisted queries",
            timeout=timeout,
            retry_after=retry_after,
            error=PersistedQueryStoreUnavailable,
            logger=logger,
            fallback="hash lookups answer 503, registrations and audit counts are skipped",
        )
        self._owns_client = owns_client
        self._trusted_key = f"{namespace}:trusted"
        self._by_sha256_key = f"{namespace}:trusted-sha256"
        self._unknown_key = f"{namespace}:unknown"
        self._note_unknown = redis.register_script(_NOTE_UNKNOWN)
        self._register = redis.register_script(_REGISTER)

    def automatic_key(self, sha256: str) -> str:
        return f"{self.namespace}:apq:{sha256}"

    def quota_key(self, registrant: str) -> str:
        return f"{self.namespace}:apq-quota:{registrant}"

    async def get_automatic(self, sha256: str) -> str | None:
        async with self.guard.bounded():
            return _text(await self.redis.get(self.automatic_key(sha256)))

    async def put_automatic(self, sha256: str, document: str, *, registrant: str) -> bool:
        async with self.guard.bounded():
            stored = await self._register(
                keys=[self.automatic_key(sha256), self.quota_key(registrant)],
                args=[
                    document,
                    self.apq_ttl_seconds,
                    self.registrations_per_client,
                    self.registration_window_seconds,
                ],
            )
        return bool(stored)

    async def get_trusted(self, key: str) -> TrustedDocument | None:
        async with self.guard.bounded():
            return await self._get_trusted(key)

    async def _get_trusted(self, key: str) -> TrustedDocument | None:
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
        async with self.guard.bounded(), self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._trusted_key, mapping=records)
            pipe.hset(self._by_sha256_key, mapping=by_sha256)
            await pipe.execute()

    async def list_trusted(self) -> list[TrustedDocument]:
        async with self.guard.bounded():
            records: dict[Any, Any] = await self.redis.hgetall(self._trusted_key)
        documents = [_decode(_text(key) or "", raw) for key, raw in records.items()]
        return sorted(documents, key=lambda d: d.id)

    async def remove_trusted(self, ids: Iterable[str]) -> int:
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return 0
        async with self.guard.bounded():
            return await self._remove_trusted(wanted)

    async def _remove_trusted(self, wanted: list[str]) -> int:
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
        async with self.guard.bounded():
            count = await self._note_unknown(
                keys=[self._unknown_key], args=[sha256, self.max_unknown]
            )
        return int(count)

    async def unknown_counts(self) -> dict[str, int]:
        async with self.guard.bounded():
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
