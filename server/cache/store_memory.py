"""The result-cache store of one process: an LRU bounded in bytes.

Right for a single process (the embedded default); several processes need the
Redis store, since an invalidation here reaches only this process.

Example:
    store = InMemoryCacheStore(max_bytes=64 * 1024 * 1024)
    since = await store.snapshot()
    await store.put("k", b"...", tags=["Product:1"], ttl=300, since=since)
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from server.cache.protocol import ALL_TYPES, Snapshot, type_of_tag

T = TypeVar("T")

ENTRY_OVERHEAD = 200
"""Bytes an entry costs beyond its key, value and tags (objects, index slots)."""

DEFAULT_MAX_TOMBSTONES = 100_000


@dataclass(slots=True)
class _Entry:
    value: bytes
    expires_at: float
    tags: tuple[str, ...]
    generations: dict[str, int]
    since: int
    size: int


def _entity_key(tag: str) -> str:
    return "e:" + tag


class InMemoryCacheStore:
    """Implements server.cache.protocol.ResultCache in this process.

    Entries (responses and entities alike) are evicted least recently used first
    once their bytes pass `max_bytes`. An invalidation leaves a tombstone for
    `tombstone_ttl` seconds, which must outlast the longest read that could race
    with it (an entity's TTL, an execution's timeout); a read older than the
    oldest tombstone forgotten stores nothing.
    """

    def __init__(
        self,
        *,
        max_bytes: int,
        tombstone_ttl: float = 600.0,
        max_tombstones: int = DEFAULT_MAX_TOMBSTONES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_bytes = max_bytes
        self.tombstone_ttl = tombstone_ttl
        self.max_tombstones = max_tombstones
        self._clock = clock
        # Hand-written, not cachetools: every eviction must also unhook the entry from
        # the tag index (`_by_tag`), and cachetools evicts silently (only a subclass
        # overriding popitem would hear of it); an entry is also dropped when a
        # generation moved. The tombstones are a queue by age with a horizon, not an LRU.
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._by_tag: dict[str, set[str]] = {}
        self._bytes = 0
        self._invalidations = 0
        self._tombstones: OrderedDict[str, tuple[int, float]] = OrderedDict()
        self._horizon = 0  # the latest invalidation whose tombstone was forgotten
        self._generations: dict[str, int] = {}
        self._locks: dict[str, tuple[str, float]] = {}

    @property
    def size(self) -> int:
        """What the entries held now count against `max_bytes`."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    async def snapshot(self) -> Snapshot:
        return Snapshot(self._invalidations, dict(self._generations))

    def _read(self, key: str) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        current = all(self._generations.get(t, 0) == g for t, g in entry.generations.items())
        if not current or self._clock() >= entry.expires_at:
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return entry

    async def get(self, keys: Sequence[str]) -> list[bytes | None]:
        entries = [self._read(key) for key in keys]
        return [None if e is None else e.value for e in entries]

    async def get_decoded(
        self, keys: Sequence[str], decode: Callable[[bytes], T]
    ) -> list[T | None]:
        return [None if value is None else decode(value) for value in await self.get(keys)]

    def peek_decoded(self, keys: Sequence[str], decode: Callable[[bytes], T]) -> list[T | None]:
        """As `get_decoded`: this store is all in memory."""
        entries = [self._read(key) for key in keys]
        return [None if e is None else decode(e.value) for e in entries]

    async def put(
        self, key: str, value: bytes, *, tags: Collection[str], ttl: float, since: Snapshot
    ) -> bool:
        self._forget_tombstones()
        if since.clock < self._horizon or any(self._invalidated_after(t, since) for t in tags):
            return False
        if not self._write(key, value, tuple(tags), ttl, since):
            return False
        for tag in tags:
            self._by_tag.setdefault(tag, set()).add(key)
        return True

    async def get_entities(self, tags: Sequence[str]) -> tuple[list[bytes | None], Snapshot]:
        snapshot = await self.snapshot()
        values: list[bytes | None] = []
        for tag in tags:
            entry = self._read(_entity_key(tag))
            stale = entry is not None and (
                entry.since < self._horizon or self._invalidated_after(tag, Snapshot(entry.since))
            )
            values.append(None if entry is None or stale else entry.value)
        return values, snapshot

    async def put_entities(
        self, values: Mapping[str, bytes], *, ttl: float, since: Snapshot
    ) -> None:
        for tag, value in values.items():
            self._write(_entity_key(tag), value, (tag,), ttl, since)

    async def invalidate(self, tags: Collection[str]) -> None:
        self._invalidations += 1
        now = self._clock()
        for tag in tags:
            self._tombstones.pop(tag, None)
            self._tombstones[tag] = (self._invalidations, now)
            for key in self._by_tag.pop(tag, set()) | {_entity_key(tag)}:
                if key in self._entries:
                    self._drop(key)
        self._forget_tombstones()

    async def invalidate_types(self, type_names: Collection[str]) -> None:
        for name in type_names:
            self._generations[name] = self._generations.get(name, 0) + 1

    async def lock(self, key: str, ttl: float) -> str | None:
        now = self._clock()
        held = self._locks.get(key)
        if held is not None and held[1] > now:
            return None
        token = secrets.token_hex(8)
        self._locks[key] = (token, now + ttl)
        return token

    async def unlock(self, key: str, token: str) -> None:
        held = self._locks.get(key)
        if held is not None and held[0] == token:
            del self._locks[key]

    async def close(self) -> None:
        return None

    def _invalidated_after(self, tag: str, since: Snapshot) -> bool:
        tombstone = self._tombstones.get(tag)
        return tombstone is not None and tombstone[0] > since.clock

    def _write(
        self, key: str, value: bytes, tags: tuple[str, ...], ttl: float, since: Snapshot
    ) -> bool:
        size = len(key) + len(value) + sum(len(t) for t in tags) + ENTRY_OVERHEAD
        if size > self.max_bytes:
            return False
        if key in self._entries:
            self._drop(key)
        types = {type_of_tag(t) for t in tags} | {ALL_TYPES}
        generations = {t: since.generations.get(t, 0) for t in types}
        self._entries[key] = _Entry(
            value, self._clock() + ttl, tags, generations, since.clock, size
        )
        self._bytes += size
        while self._bytes > self.max_bytes:
            self._drop(next(iter(self._entries)))
        return True

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key)
        self._bytes -= entry.size
        for tag in entry.tags:
            keys = self._by_tag.get(tag)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_tag[tag]

    def _forget_tombstones(self) -> None:
        expired_before = self._clock() - self.tombstone_ttl
        while self._tombstones:
            tag, (clock, at) = next(iter(self._tombstones.items()))
            if at > expired_before and len(self._tombstones) <= self.max_tombstones:
                break
            del self._tombstones[tag]
            self._horizon = max(self._horizon, clock)
