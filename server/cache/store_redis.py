"""The result-cache store in Redis, shared by every worker and instance.

Layout (every key under `sf:v1:cache:`, every key with a TTL):

    r:<key>     string, a response: header line (generations, expiry) + value; TTL of the entry.
                The value is server/cache/cached_response.py `CachedResponse.encode`:
                a JSON header line, the answer's bytes, then (compression on) its
                prefix coded as an open zstd, br and gzip stream, back to back; the
                header gives the answer's length (`b`) and each stream's coding,
                length, CRC-32 and size (`c`). One GET reads all codings at once.
    e:<tag>     string, an entity (`e:Product:42`): header line (snapshot) + value
    t:<tag>     sorted set, the response keys carrying <tag>, scored by their expiry
                (ms); TTL at least its longest member's; expired members trimmed on write
    tv:<tag>    string, the clock of <tag>'s last invalidation (its tombstone)
    clock       string, the invalidation clock: µs, max(previous + 1, server time)
    gen         string, JSON {type: generation}, `*` for every type (one key, so a
                lookup is one MGET of the entries and it)
    lock:<key>  string, the token of the process filling <key>

An invalidation is one Lua script: it advances the clock, writes a tombstone
per tag, and deletes the tag's entity and the responses its sorted set lists;
a set too large to walk inside a script is dropped in O(1) by bumping its
type's generation instead. A response is stored by another script, which
refuses it if one of its tags has a tombstone as new as the reader's snapshot.
Nothing on the hot path scans keys.

Both invalidation scripts also PUBLISH what they dropped on `channel`
(`<namespace>:<db>:invalidated`: Redis delivers messages to every database's
clients, so the database number keeps deployments sharing a server apart), as
JSON `{"k": [response keys deleted], "t": [types whose generation moved]}`, in
the same atomic step: the near caches of every process (server/cache/store_near.py)
hear of every change to what they copied. The message also goes to this
process's `on_invalidated` as the script returns, before the write is answered.

Fail-open: every call goes through a `RedisGuard` (server/redis_guard.py): it
is bounded by `timeout` (give the store a client from `bounded_client`), and a
call that fails or is late raises CacheUnavailable; the guard's breaker keeps
the store away from a sick Redis for `retry_after` seconds at a time and logs
the outage at most once a minute. An invalidation that cannot reach Redis is
kept and replayed before this store serves anything again.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
from redis.asyncio import Redis

from server.cache.protocol import ALL_TYPES, CacheUnavailable, Snapshot, type_of_tag
from server.redis_guard import RedisGuard

logger = logging.getLogger("storefront.cache")

T = TypeVar("T")

NAMESPACE = "sf:v1:cache"
META_TTL_MS = 7 * 24 * 3600 * 1000  # the clock and the generations
MAX_TAG_MEMBERS = 1000
MAX_PENDING_TAGS = 10_000

# Bumps generations in the JSON of KEYS[1]. Shared by the scripts below.
_BUMP = """
local function bump(key, names, ttl)
  local raw = redis.call('GET', key)
  local generations = raw and cjson.decode(raw) or {}
  for _, name in ipairs(names) do
    generations[name] = (generations[name] or 0) + 1
  end
  redis.call('SET', key, cjson.encode(generations), 'PX', ttl)
end
"""

# KEYS: generations. ARGV: its TTL (ms), the channel, then the types to bump.
_INVALIDATE_TYPES = (
    _BUMP
    + """
local names = {}
for i = 3, #ARGV do names[#names + 1] = ARGV[i] end
bump(KEYS[1], names, ARGV[1])
local message = cjson.encode({k = {}, t = names})
redis.call('PUBLISH', ARGV[2], message)
return message
"""
)

# KEYS: clock, generations, then per tag: its sorted set, tombstone, entity.
# ARGV: tombstone TTL (ms), most members to delete per tag, clock TTL (ms), the
# channel, then the type of each tag. Lua numbers print as 1.7e+15: format them.
_INVALIDATE = (
    _BUMP
    + """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local clock = math.max((tonumber(redis.call('GET', KEYS[1])) or 0) + 1, now)
local stamp = string.format('%.0f', clock)
redis.call('SET', KEYS[1], stamp, 'PX', ARGV[3])
local dropped, bumped = {}, {}
for i = 3, #KEYS, 3 do
  local members = KEYS[i]
  redis.call('SET', KEYS[i + 1], stamp, 'PX', ARGV[1])
  redis.call('DEL', KEYS[i + 2])
  if redis.call('ZCARD', members) > tonumber(ARGV[2]) then
    bump(KEYS[2], {ARGV[4 + i / 3]}, ARGV[3])
    bumped[#bumped + 1] = ARGV[4 + i / 3]
  else
    local keys = redis.call('ZRANGE', members, 0, -1)
    for j = 1, #keys, 500 do
      redis.call('DEL', unpack(keys, j, math.min(j + 499, #keys)))
      for n = j, math.min(j + 499, #keys) do dropped[#dropped + 1] = keys[n] end
    end
  end
  redis.call('DEL', members)
end
local message = cjson.encode({k = dropped, t = bumped})
redis.call('PUBLISH', ARGV[4], message)
return message
"""
)

# KEYS: the entry, then per tag: its sorted set and tombstone.
# ARGV: value, TTL (ms), the reader's snapshot clock (µs), tombstone TTL (ms).
_PUT = """
local since = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
if now - since > tonumber(ARGV[4]) * 1000 then
  return 0
end
for i = 2, #KEYS, 2 do
  local tombstone = tonumber(redis.call('GET', KEYS[i + 1]))
  if tombstone and tombstone >= since then
    return 0
  end
end
local ttl = tonumber(ARGV[2])
local now_ms = math.floor(now / 1000)
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
for i = 2, #KEYS, 2 do
  local members = KEYS[i]
  redis.call('ZREMRANGEBYSCORE', members, '-inf', string.format('%.0f', now_ms))
  redis.call('ZADD', members, string.format('%.0f', now_ms + ttl), KEYS[1])
  if redis.call('PTTL', members) < ttl then
    redis.call('PEXPIRE', members, ttl)
  end
end
return 1
"""

_UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def _frame(header: Mapping[str, Any], value: bytes) -> bytes:
    return orjson.dumps(header) + b"\n" + value


def _unframe(raw: bytes) -> tuple[dict[str, Any], bytes]:
    header, _, value = raw.partition(b"\n")
    return orjson.loads(header), value


def _generations(raw: bytes | None) -> dict[str, int]:
    return {} if raw is None else {k: int(v) for k, v in orjson.loads(raw).items()}


def _snapshot(clock: Any, server_time: Any, generations: bytes | None) -> Snapshot:
    seconds, micros = server_time
    now = int(seconds) * 1_000_000 + int(micros)
    return Snapshot(max(int(clock or 0), now), _generations(generations))


def _current(header: Mapping[str, Any], generations: Mapping[str, int]) -> bool:
    recorded: Mapping[str, int] = header["g"]
    return all(generations.get(t, 0) == g for t, g in recorded.items())


def _channel(redis: Redis, namespace: str) -> str:
    db = redis.connection_pool.connection_kwargs.get("db", 0)
    return f"{namespace}:{db}:invalidated"


@dataclass(frozen=True, slots=True)
class Stored:
    """A response as read: its value, the types its tags belong to (ALL_TYPES
    included), and when its key expires (epoch seconds; None if not recorded)."""

    value: bytes
    types: frozenset[str]
    expires_at: float | None


@dataclass(frozen=True, slots=True)
class Invalidated:
    """What one invalidation dropped: response keys, and types whose generation moved."""

    keys: tuple[str, ...]
    types: tuple[str, ...]


class RedisCacheStore:
    """Implements server.cache.protocol.ResultCache in Redis (see the module docstring)."""

    def __init__(
        self,
        redis: Redis,
        *,
        timeout: float = 0.05,
        tombstone_ttl: float = 600.0,
        retry_after: float = 1.0,
        namespace: str = NAMESPACE,
        owns_client: bool = False,
        on_invalidated: Callable[[bytes], None] | None = None,
    ) -> None:
        """`on_invalidated` is given each invalidation message this store publishes
        (see the module docstring), as soon as Redis has run it."""
        self.redis = redis
        self.tombstone_ttl = tombstone_ttl
        self.guard = RedisGuard(
            "result cache",
            timeout=timeout,
            retry_after=retry_after,
            error=CacheUnavailable,
            logger=logger,
            fallback="bypassed, serving from the database",
        )
        self.prefix = namespace + ":"
        self.channel = _channel(redis, namespace)
        self.on_invalidated = on_invalidated
        self._owns_client = owns_client
        self._invalidate = redis.register_script(_INVALIDATE)
        self._invalidate_types = redis.register_script(_INVALIDATE_TYPES)
        self._put = redis.register_script(_PUT)
        self._unlock = redis.register_script(_UNLOCK)
        self._pending: set[str] = set()
        self._pending_types: set[str] = set()

    # Reads and writes

    async def get(self, keys: Sequence[str]) -> list[bytes | None]:
        return [None if s is None else s.value for s in await self.read(keys)]

    async def get_decoded(
        self, keys: Sequence[str], decode: Callable[[bytes], T]
    ) -> list[T | None]:
        return [None if s is None else decode(s.value) for s in await self.read(keys)]

    def peek_decoded(self, keys: Sequence[str], decode: Callable[[bytes], T]) -> None:
        """Nothing is known without asking Redis."""
        return None

    async def read(self, keys: Sequence[str]) -> list[Stored | None]:
        """The responses stored under `keys`, with what a near cache keeps of them."""
        names = [self.prefix + "r:" + key for key in keys] + [self.prefix + "gen"]
        async with self._bounded():
            found: list[Any] = await self.redis.mget(names)
        *raws, generations = found
        current = _generations(generations)
        values: list[Stored | None] = []
        for raw in raws:
            if raw is None:
                values.append(None)
                continue
            header, value = _unframe(raw)
            if _current(header, current):
                values.append(Stored(value, frozenset(header["g"]), header.get("x")))
            else:
                values.append(None)
        return values

    def invalidated(self, message: bytes) -> Invalidated:
        """What an invalidation message of this store's `channel` dropped."""
        body = orjson.loads(message)
        # An empty Lua table encodes as {}, not [].
        start = len(self.prefix) + len("r:")
        keys = tuple(name[start:] for name in body.get("k") or ())
        return Invalidated(keys, tuple(body.get("t") or ()))

    @property
    def pending(self) -> bool:
        """Whether an invalidation is waiting for Redis to take it."""
        return bool(self._pending or self._pending_types)

    async def snapshot(self) -> Snapshot:
        async with self._bounded(), self.redis.pipeline(transaction=False) as pipe:
            pipe.mget(self.prefix + "clock", self.prefix + "gen")
            pipe.time()
            (clock, generations), server_time = await pipe.execute()
        return _snapshot(clock, server_time, generations)

    async def put(
        self, key: str, value: bytes, *, tags: Collection[str], ttl: float, since: Snapshot
    ) -> bool:
        keys = [self.prefix + "r:" + key]
        for tag in tags:
            keys += [self.prefix + "t:" + tag, self.prefix + "tv:" + tag]
        header = {"g": self._recorded(tags, since), "x": time.time() + ttl}
        async with self._bounded():
            stored = await self._put(
                keys=keys,
                args=[
                    _frame(header, value),
                    max(1, int(ttl * 1000)),
                    since.clock,
                    int(self.tombstone_ttl * 1000),
                ],
            )
        return bool(stored)

    async def get_entities(self, tags: Sequence[str]) -> tuple[list[bytes | None], Snapshot]:
        names = [self.prefix + "e:" + t for t in tags] + [self.prefix + "tv:" + t for t in tags]
        names += [self.prefix + "clock", self.prefix + "gen"]
        async with self._bounded(), self.redis.pipeline(transaction=False) as pipe:
            pipe.mget(names)
            pipe.time()
            (*found, clock, generations), server_time = await pipe.execute()
        snapshot = _snapshot(clock, server_time, generations)
        raws, tombstones = found[: len(tags)], found[len(tags) :]
        values: list[bytes | None] = []
        for raw, tombstone in zip(raws, tombstones, strict=True):
            if raw is None:
                values.append(None)
                continue
            header, value = _unframe(raw)
            fresh = tombstone is None or int(tombstone) < header["c"]
            values.append(value if fresh and _current(header, snapshot.generations) else None)
        return values, snapshot

    async def put_entities(
        self, values: Mapping[str, bytes], *, ttl: float, since: Snapshot
    ) -> None:
        if not values:
            return
        async with self._bounded(), self.redis.pipeline(transaction=False) as pipe:
            for tag, value in values.items():
                header = {"c": since.clock, "g": self._recorded((tag,), since)}
                pipe.set(
                    self.prefix + "e:" + tag, _frame(header, value), px=max(1, int(ttl * 1000))
                )
            await pipe.execute()

    # Invalidation

    async def invalidate(self, tags: Collection[str]) -> None:
        """Runs the invalidation script; when Redis cannot take it, keeps the tags
        and replays them before serving anything again."""
        self._pending.update(tags)
        await self._sync()

    async def invalidate_types(self, type_names: Collection[str]) -> None:
        self._pending_types.update(type_names)
        await self._sync()

    async def _sync(self) -> None:
        try:
            async with self._bounded():
                pass  # _bounded replays what is pending
        except CacheUnavailable:
            if len(self._pending) > MAX_PENDING_TAGS:
                # Dropping everything is as correct as the tags, and bounded.
                self._pending.clear()
                self._pending_types.add(ALL_TYPES)

    async def _flush_pending(self) -> None:
        if self._pending_types:
            names = sorted(self._pending_types)
            message = await self._invalidate_types(
                keys=[self.prefix + "gen"], args=[META_TTL_MS, self.channel, *names]
            )
            self._pending_types.difference_update(names)
            self._announce(message)
        if self._pending:
            tags = sorted(self._pending)
            keys = [self.prefix + "clock", self.prefix + "gen"]
            for tag in tags:
                keys += [
                    self.prefix + "t:" + tag,
                    self.prefix + "tv:" + tag,
                    self.prefix + "e:" + tag,
                ]
            message = await self._invalidate(
                keys=keys,
                args=[
                    int(self.tombstone_ttl * 1000),
                    MAX_TAG_MEMBERS,
                    META_TTL_MS,
                    self.channel,
                    *(type_of_tag(t) for t in tags),
                ],
            )
            self._pending.difference_update(tags)
            self._announce(message)

    def _announce(self, message: bytes) -> None:
        if self.on_invalidated is not None:
            self.on_invalidated(message)

    # Locks

    async def lock(self, key: str, ttl: float) -> str | None:
        token = secrets.token_hex(8)
        async with self._bounded():
            acquired = await self.redis.set(
                self.prefix + "lock:" + key, token, nx=True, px=max(1, int(ttl * 1000))
            )
        return token if acquired else None

    async def unlock(self, key: str, token: str) -> None:
        async with self._bounded():
            await self._unlock(keys=[self.prefix + "lock:" + key], args=[token])

    async def close(self) -> None:
        if self._owns_client:
            await self.redis.aclose()

    # Helpers

    def _recorded(self, tags: Collection[str], since: Snapshot) -> dict[str, int]:
        types = {type_of_tag(t) for t in tags} | {ALL_TYPES}
        return {t: since.generations.get(t, 0) for t in sorted(types)}

    @asynccontextmanager
    async def _bounded(self) -> AsyncIterator[None]:
        """Runs the block against Redis through the guard, replaying pending
        invalidations first; CacheUnavailable when Redis fails or is slow."""
        async with self.guard.bounded():
            if self._pending or self._pending_types:
                await self._flush_pending()
            yield
