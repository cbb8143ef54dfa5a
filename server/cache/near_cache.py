"""The near cache: decoded entries of the shared store, kept in this process, bounded in bytes.

A pure data structure (no Redis, no tasks): server/cache/store_near.py fills it
from Redis and server/cache/invalidation_listener.py drops from it what other
processes invalidate. An entry is kept with the types its tags belong to (so a
type-wide invalidation finds it) and expires when its Redis key does.

Entries are counted by their stored bytes (key and payload, plus a fixed
overhead) and evicted least recently used first. An entry is kept decoded: the
first hit decodes the stored bytes once, every later hit returns that object,
parsing nothing.

`epoch` moves on every drop: a filler reads it before asking Redis and stores
what Redis answered only if it has not moved (an invalidation may have crossed
the answer on the other connection).

Example:
    near = NearCache(max_bytes=32 * 1024 * 1024)
    epoch = near.epoch
    raw = ...  # read from Redis
    near.put("k", raw, types=frozenset({"Product", "*"}), expires_at=time.monotonic() + 60,
             epoch=epoch)
    near.get("k", CachedResponse.decode, now=time.monotonic())
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from server.cache.protocol import ALL_TYPES

T = TypeVar("T")

ENTRY_OVERHEAD = 200
"""Bytes an entry costs beyond its key and payload (objects, index slots)."""


class _Absent:
    """The value of a key known to be absent from the store (see `put_absent`)."""


ABSENT: Any = _Absent()


@dataclass(slots=True)
class _Entry:
    raw: bytes | None  # None once decoded, or for an absent key
    decoded: Any
    decoder: Callable[[bytes], Any] | None
    types: frozenset[str]
    expires_at: float
    size: int


class NearCache:
    """Decoded store entries of this process (see the module docstring)."""

    def __init__(self, *, max_bytes: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_bytes = max_bytes
        self.clock = clock
        self.epoch = 0
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._bytes = 0

    @property
    def size(self) -> int:
        """The bytes the entries count against `max_bytes`."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def get(self, key: str, decode: Callable[[bytes], T], *, now: float) -> T | None:
        """The decoded entry of `key`; ABSENT when the key is known to be absent;
        None when this cache does not know (a near miss)."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if now >= entry.expires_at:
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        # `!=`, not `is not`: each `Class.decode` access makes a new bound method.
        if entry.decoder != decode and entry.decoded is not ABSENT:
            if entry.raw is None:
                return None  # decoded by another decoder: not of our type
            # Decoded once, on the first hit; the stored bytes are let go.
            entry.decoded, entry.decoder, entry.raw = decode(entry.raw), decode, None
        return entry.decoded  # type: ignore[no-any-return]

    def expiry(self, key: str) -> float | None:
        """When the entry of `key` expires; None when there is none."""
        entry = self._entries.get(key)
        return None if entry is None else entry.expires_at

    def put(
        self,
        key: str,
        raw: bytes,
        *,
        types: frozenset[str],
        expires_at: float,
        epoch: int,
    ) -> bool:
        """Keeps `raw` under `key` unless something was dropped since `epoch` was read."""
        size = len(key) + len(raw) + ENTRY_OVERHEAD
        return self._put(key, _Entry(raw, None, None, types, expires_at, size), epoch)

    def put_absent(self, key: str, *, expires_at: float, epoch: int) -> bool:
        """Remembers that the store holds nothing under `key`, until `expires_at`.

        Only for a key read together with alternatives one of which was found (a
        viewer's entry next to a public one): a store write from another process
        is not announced, so this may hide a later entry until it expires.
        """
        size = len(key) + ENTRY_OVERHEAD
        return self._put(key, _Entry(None, ABSENT, None, frozenset(), expires_at, size), epoch)

    def drop(self, keys: Iterable[str]) -> None:
        self.epoch += 1
        for key in keys:
            if key in self._entries:
                self._drop(key)

    def drop_types(self, type_names: Collection[str]) -> None:
        """Drops every entry with a tag of one of `type_names` (ALL_TYPES: every entry)."""
        if ALL_TYPES in type_names:
            self.clear()
            return
        self.epoch += 1
        names = frozenset(type_names)
        for key in [k for k, e in self._entries.items() if e.types & names]:
            self._drop(key)

    def clear(self) -> None:
        self.epoch += 1
        self._entries.clear()
        self._bytes = 0

    def _put(self, key: str, entry: _Entry, epoch: int) -> bool:
        if epoch != self.epoch or entry.size > self.max_bytes:
            return False
        if key in self._entries:
            self._drop(key)
        self._entries[key] = entry
        self._bytes += entry.size
        while self._bytes > self.max_bytes:
            self._drop(next(iter(self._entries)))
        return True

    def _drop(self, key: str) -> None:
        self._bytes -= self._entries.pop(key).size
