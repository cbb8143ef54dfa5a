"""The Redis result store with a near cache in front: a hit makes no round trip.

Implements server.cache.protocol.ResultCache over a `RedisCacheStore`. Responses
read through `get_decoded` are served from this process's `NearCache` when it
holds them, decoded once; a near miss reads Redis (one MGET, as before) and keeps
what it found, with the types of its tags and its key's expiry. Everything else
(snapshots, entities, locks) goes to Redis unchanged.

Coherence: every invalidation, from any process or from `storefront cache purge`,
is published by the Redis script that performs it; this process applies its own
as the script returns (so its next request already sees the write) and every
other's through the `InvalidationListener`. The near cache is read only while
that subscription is live, no invalidation of this process is waiting for
Redis, and Redis's breaker is closed; otherwise requests go to Redis as if
there were no near cache. What another process invalidated may be served here
until its message arrives (normally well under a millisecond, at most
`2 * heartbeat` over a silently broken connection).

A read and an invalidation travel on different connections, so a message can
overtake the answer it should have dropped: a near miss notes `NearCache.epoch`
before asking Redis and keeps the answer only if no drop happened meanwhile.

Example:
    store = NearCacheStore(redis_store, NearCache(max_bytes=32 << 20),
                           redis_url=url, heartbeat=1.0)
    store.start()
    [entry] = await store.get_decoded([key], CachedResponse.decode)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TypeVar

import orjson

from server.cache.invalidation_listener import InvalidationListener
from server.cache.near_cache import ABSENT, NearCache
from server.cache.protocol import ALL_TYPES, Snapshot, type_of_tag
from server.cache.store_redis import RedisCacheStore

logger = logging.getLogger("storefront.cache")

T = TypeVar("T")


class NearCacheStore:
    """A RedisCacheStore behind a NearCache (see the module docstring)."""

    def __init__(
        self,
        inner: RedisCacheStore,
        near: NearCache,
        *,
        redis_url: str,
        heartbeat: float = 1.0,
    ) -> None:
        self.inner = inner
        self.near = near
        self.redis = inner.redis
        inner.on_invalidated = self.apply
        self.listener = InvalidationListener(
            redis_url,
            channel=inner.channel,
            apply=self.apply,
            reset=near.clear,
            heartbeat=heartbeat,
        )

    def start(self) -> None:
        """Starts listening for invalidations; the near cache serves once subscribed."""
        self.listener.start()

    @property
    def usable(self) -> bool:
        """Whether the near cache may be read and filled now."""
        inner = self.inner
        return self.listener.live and not inner.pending and not inner.guard.is_open

    def apply(self, message: bytes) -> None:
        """Drops what an invalidation message names (from this process or another)."""
        near = self.near
        try:
            invalidated = self.inner.invalidated(message)
        except (orjson.JSONDecodeError, TypeError, AttributeError):
            logger.warning("cache invalidations: unreadable message; near cache emptied")
            near.clear()
            return
        near.drop(invalidated.keys)
        if invalidated.types:
            near.drop_types(invalidated.types)

    # Reads

    async def get(self, keys: Sequence[str]) -> list[bytes | None]:
        return await self.inner.get(keys)

    async def get_decoded(
        self, keys: Sequence[str], decode: Callable[[bytes], T]
    ) -> list[T | None]:
        if not self.usable:
            return await self.inner.get_decoded(keys, decode)
        near = self.near
        now = near.clock()
        values = [near.get(key, decode, now=now) for key in keys]
        if None not in values:  # every key known here: no round trip
            return [None if value is ABSENT else value for value in values]
        epoch = near.epoch
        missing = [key for key, value in zip(keys, values, strict=True) if value is None]
        stored = await self.inner.read(missing)
        wall, now = time.time(), near.clock()
        decoded: dict[str, T | None] = {}
        found_near = [
            near.expiry(key)
            for key, value in zip(keys, values, strict=True)
            if value is not None and value is not ABSENT
        ]
        latest = max((e for e in found_near if e is not None), default=None)
        for key, entry in zip(missing, stored, strict=True):
            if entry is None:
                decoded[key] = None
                continue
            if entry.expires_at is not None:
                expires_at = now + (entry.expires_at - wall)
                latest = expires_at if latest is None else max(latest, expires_at)
                near.put(key, entry.value, types=entry.types, expires_at=expires_at, epoch=epoch)
            kept = near.get(key, decode, now=now) if key in near else None
            decoded[key] = decode(entry.value) if kept is None else kept
        if latest is not None:
            # Alternatives of what was found (the viewer's key next to the public
            # one): remember them absent for as long, so that hit needs no Redis.
            for key, value in decoded.items():
                if value is None:
                    near.put_absent(key, expires_at=latest, epoch=epoch)
        return [
            None if value is ABSENT else decoded[key] if value is None else value
            for key, value in zip(keys, values, strict=True)
        ]

    def peek_decoded(
        self, keys: Sequence[str], decode: Callable[[bytes], T]
    ) -> list[T | None] | None:
        """As `get_decoded` when the near cache knows every key (held, or known
        absent); None when one of them would need Redis."""
        if not self.usable:
            return None
        near = self.near
        now = near.clock()
        values = [near.get(key, decode, now=now) for key in keys]
        if None in values:
            return None
        return [None if value is ABSENT else value for value in values]

    async def snapshot(self) -> Snapshot:
        return await self.inner.snapshot()

    async def get_entities(self, tags: Sequence[str]) -> tuple[list[bytes | None], Snapshot]:
        return await self.inner.get_entities(tags)

    # Writes

    async def put(
        self, key: str, value: bytes, *, tags: Collection[str], ttl: float, since: Snapshot
    ) -> bool:
        epoch = self.near.epoch
        stored = await self.inner.put(key, value, tags=tags, ttl=ttl, since=since)
        if stored and self.usable:
            types = frozenset({type_of_tag(t) for t in tags} | {ALL_TYPES})
            self.near.put(key, value, types=types, expires_at=self.near.clock() + ttl, epoch=epoch)
        return stored

    async def put_entities(
        self, values: Mapping[str, bytes], *, ttl: float, since: Snapshot
    ) -> None:
        await self.inner.put_entities(values, ttl=ttl, since=since)

    async def invalidate(self, tags: Collection[str]) -> None:
        """Invalidates in Redis; what it dropped leaves the near cache as the script
        returns (`apply`), and all of it if Redis could not take it yet."""
        try:
            await self.inner.invalidate(tags)
        finally:
            if self.inner.pending:
                self.near.clear()

    async def invalidate_types(self, type_names: Collection[str]) -> None:
        try:
            await self.inner.invalidate_types(type_names)
        finally:
            if self.inner.pending:
                self.near.clear()

    # Locks

    async def lock(self, key: str, ttl: float) -> str | None:
        return await self.inner.lock(key, ttl)

    async def unlock(self, key: str, token: str) -> None:
        await self.inner.unlock(key, token)

    async def close(self) -> None:
        await self.listener.close()
        await self.inner.close()
