"""The seam between the result caches and where cached results are kept.

Two kinds of entries live in a store: responses (opaque bytes under a key,
dropped when any of their tags is invalidated) and entities (one record per
`Type:id` tag). `server/cache/store_memory.py` and `server/cache/store_redis.py`
implement the Protocol, in process and in Redis.

Writes race with invalidation: a read that began before a write committed
may finish after the write's tags were invalidated, and must not then store
what it read. So a reader takes a `Snapshot` of the invalidation clock before
it reads the data, and a store refuses (responses) or later ignores
(entities) a value read before the last invalidation of one of its tags.
Type-wide invalidation (`invalidate_types`) is O(1): it bumps a generation
that every entry recorded when it was read.

Example:
    (value,) = await store.get([key])
    if value is None:
        snapshot = await store.snapshot()
        body = ...  # execute, reading the database after the snapshot
        await store.put(key, body, tags=["Product:42"], ttl=300, since=snapshot)
    await store.invalidate(["Product:42"])  # after a write commits
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

T = TypeVar("T")


class CacheUnavailable(Exception):
    """The store cannot be reached (or answered too slowly): callers go to the database."""


ALL_TYPES = "*"
"""The generation that `invalidate_types([ALL_TYPES])` bumps: every entry depends on it."""


def type_of_tag(tag: str) -> str:
    """The type a tag belongs to: `Product` for `Product:42` and `Product:list:...`."""
    return tag.split(":", 1)[0]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What a reader saw of invalidation before it read: the clock, and the generations."""

    clock: int = 0
    generations: Mapping[str, int] = field(default_factory=dict)


class ResultCache(Protocol):
    """Cached responses and entities, with tag and type-wide invalidation.

    Every entry expires after its TTL (seconds). Values are bytes the caller
    encodes; a value that no longer holds (invalidated, expired, of an older
    generation) reads as None.
    """

    async def get(self, keys: Sequence[str]) -> list[bytes | None]:
        """The responses stored under `keys`."""
        ...

    async def get_decoded(
        self, keys: Sequence[str], decode: Callable[[bytes], T]
    ) -> list[T | None]:
        """The responses stored under `keys`, each as `decode` makes it; a store may
        keep what `decode` returned and give it again (so it must not be mutated)."""
        ...

    def peek_decoded(
        self, keys: Sequence[str], decode: Callable[[bytes], T]
    ) -> list[T | None] | None:
        """What `get_decoded` would give, when this store can say it without I/O (it
        holds or knows the absence of every key in this process); else None."""
        ...

    async def snapshot(self) -> Snapshot:
        """The state of invalidation now: take it before reading what is to be stored."""
        ...

    async def put(
        self, key: str, value: bytes, *, tags: Collection[str], ttl: float, since: Snapshot
    ) -> bool:
        """Stores a response under `key` unless a tag was invalidated after `since`
        (then returns False and stores nothing)."""
        ...

    async def get_entities(self, tags: Sequence[str]) -> tuple[list[bytes | None], Snapshot]:
        """The entities stored for `Type:id` tags, and a snapshot taken before reading."""
        ...

    async def put_entities(
        self, values: Mapping[str, bytes], *, ttl: float, since: Snapshot
    ) -> None:
        """Stores entities by tag; one invalidated after `since` will read as None."""
        ...

    async def invalidate(self, tags: Collection[str]) -> None:
        """Drops every response and entity carrying one of `tags`, in every process."""
        ...

    async def invalidate_types(self, type_names: Collection[str]) -> None:
        """Drops every entry with a tag of one of `type_names` (ALL_TYPES: every entry)."""
        ...

    async def lock(self, key: str, ttl: float) -> str | None:
        """A token when this caller now holds the lock on `key` for `ttl` s, else None."""
        ...

    async def unlock(self, key: str, token: str) -> None:
        """Releases the lock on `key` if `token` still holds it."""
        ...
