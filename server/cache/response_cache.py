"""The response cache: whole GraphQL responses, stored as the bytes that were sent.

A lookup reads the public key of a response (server/cache/cached_response.py) and
the viewer's together, and prefers the public one; a hit is the stored bytes:
nothing is executed or serialized again (nor decoded, when the store keeps what
it decoded: the near cache of server/cache/store_near.py). A miss runs once however many
identical requests arrive together (in process, and across processes through a
short lock in the store); the others wait for it, bounded by `lock_wait`, then
run themselves. Past its max-age an entry is served stale
for `stale_while_revalidate` seconds while one background refresh runs, and
for `stale_if_error` seconds in place of a failure of the database. With
`precode` (compression on), an entry is stored with its answer already compressed
in every content coding, so a hit in any of them compresses nothing.

Example:
    cache = ResponseCache(store, stale_while_revalidate=30, stale_if_error=300)
    key = ResponseKey.of(document_sha256, variables, operation_name)
    lookup = await cache.lookup(key, scope=viewer_scope(viewer))
    if lookup.usable is None:
        served = await cache.fill(key, lookup, policy=policy, scope=..., produce=run)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from resolvers.changes import Changes
from schema.cache_policy import NO_STORE, CachePolicy
from server.cache.cached_response import (
    PUBLIC,
    CachedResponse,
    CacheState,
    Lookup,
    Produced,
    ResponseKey,
    Served,
    etag_of,
)
from server.cache.protocol import CacheUnavailable, ResultCache, Snapshot
from server.http.open_streams import OpenStream

logger = logging.getLogger("storefront.cache")

Produce = Callable[[], Awaitable[Produced]]
# A stored body's prefix coded in each content coding (server/http/open_streams.py).
Precode = Callable[[bytes], Sequence[OpenStream]]


class ResponseCache:
    """Stores, serves and refreshes responses in a ResultCache (see the module docstring)."""

    def __init__(
        self,
        store: ResultCache,
        *,
        stale_while_revalidate: float = 30.0,
        stale_if_error: float = 300.0,
        lock_wait: float = 1.0,
        lock_ttl: float = 10.0,
        clock: Callable[[], float] = time.time,
        precode: Precode | None = None,
    ) -> None:
        self.store = store
        self.precode = precode
        self.stale_while_revalidate = stale_while_revalidate
        self.stale_if_error = stale_if_error
        self.lock_wait = lock_wait
        self.lock_ttl = lock_ttl
        self.clock = clock
        self._flights: dict[str, asyncio.Future[CachedResponse | None]] = {}
        self._refreshing: dict[str, asyncio.Task[None]] = {}

    async def lookup(self, key: ResponseKey, *, scope: str | None, read: bool = True) -> Lookup:
        """The public entry of `key`, else the one of `scope` (one round trip); on a
        miss, a snapshot too. Nothing is read when not `read` (the request said
        `Cache-Control: no-cache`)."""
        keys = _keys(key, scope) if read else []
        try:
            entries = await self.store.get_decoded(keys, CachedResponse.decode) if keys else []
            found, fallback = self._classified(entries)
            if found is not None:
                return found
            return Lookup(CacheState.MISS, fallback=fallback, snapshot=await self.store.snapshot())
        except CacheUnavailable:
            return Lookup(CacheState.BYPASS)

    def peek(self, key: ResponseKey, *, scope: str | None) -> CachedResponse | None:
        """The entry `lookup` would serve as a HIT, when the store can tell without I/O
        (server/http/hit_path.py); None for anything else: a miss, a stale entry, or
        a key only Redis knows. Reads nothing but this process's memory."""
        entries = self.store.peek_decoded(_keys(key, scope), CachedResponse.decode)
        if entries is None:
            return None
        found, _ = self._classified(entries)
        return found.usable if found is not None and found.state is CacheState.HIT else None

    def _classified(
        self, entries: Sequence[CachedResponse | None]
    ) -> tuple[Lookup | None, CachedResponse | None]:
        """The first entry found (public first) that is still of use: as a HIT or
        STALE lookup to serve, or else as the fallback for a failure."""
        now = self.clock()
        for entry in entries:
            if entry is None:
                continue
            age = entry.age(now)
            if age < entry.max_age:
                return Lookup(CacheState.HIT, usable=entry), None
            if age < entry.max_age + self.stale_while_revalidate:
                return Lookup(CacheState.STALE, usable=entry, fallback=entry), None
            if age < entry.max_age + self.stale_if_error:
                return None, entry
        return None, None

    async def fill(
        self,
        key: ResponseKey,
        lookup: Lookup,
        *,
        policy: CachePolicy,
        scope: str | None,
        produce: Produce,
        share: bool = True,
    ) -> Served:
        """Runs `produce` for a miss and stores what it gives when `policy` allows.

        Identical concurrent misses share one run, unless not `share` (the request
        asked for a fresh answer: it runs, and stores, on its own).
        """
        if not policy.cacheable or (policy.private and scope is None):
            policy = NO_STORE
        storage_key = self._storage_key(key, lookup, policy, scope)
        snapshot = lookup.snapshot
        if storage_key is None or snapshot is None:
            produced = await produce()
            return self._served(produced, None, lookup, CacheState.BYPASS, policy)
        flight = self._flights.get(storage_key)
        if flight is not None:
            shared = await self._await_flight(flight) if share else None
            if shared is not None:
                return Served.cached(shared)
            produced = await produce()
            entry = await self._store(storage_key, produced, policy, snapshot)
            return self._served(produced, entry, lookup, CacheState.MISS, policy)
        future: asyncio.Future[CachedResponse | None] = asyncio.get_running_loop().create_future()
        self._flights[storage_key] = future
        entry = None
        try:
            token = await self._lock(storage_key)
            try:
                if token is None and share:
                    entry = await self._wait_for_other_process(storage_key)
                    if entry is not None:
                        return Served.cached(entry)
                produced = await produce()
                entry = await self._store(storage_key, produced, policy, snapshot)
                return self._served(produced, entry, lookup, CacheState.MISS, policy)
            finally:
                if token:
                    with contextlib.suppress(CacheUnavailable):
                        await self.store.unlock(storage_key, token)
        finally:
            del self._flights[storage_key]
            future.set_result(entry)

    def revalidate(
        self, key: ResponseKey, lookup: Lookup, *, scope: str | None, produce: Produce
    ) -> None:
        """Refreshes the stale entry of `lookup` in the background, once per key at a time."""
        stale = lookup.usable
        if stale is None:
            return
        policy = CachePolicy(stale.max_age, stale.private)
        storage_key = self._storage_key(key, lookup, policy, scope)
        if storage_key is None or storage_key in self._refreshing:
            return
        task = asyncio.create_task(self._refresh(storage_key, policy, produce))
        self._refreshing[storage_key] = task
        task.add_done_callback(lambda _: self._refreshing.pop(storage_key, None))

    async def invalidate(self, changes: Changes) -> None:
        """A ChangeFeed subscriber: drops the responses and entities a committed
        write changed, in every process sharing the store."""
        await self.store.invalidate(changes.tags)

    async def close(self) -> None:
        """Cancels background refreshes (on shutdown)."""
        tasks = list(self._refreshing.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _refresh(self, storage_key: str, policy: CachePolicy, produce: Produce) -> None:
        try:
            token = await self._lock(storage_key)
            if token is None:
                return  # another process is refreshing it
            try:
                snapshot = await self.store.snapshot()
                await self._store(storage_key, await produce(), policy, snapshot)
            finally:
                if token:
                    await self.store.unlock(storage_key, token)
        except CacheUnavailable:
            pass
        except Exception:
            logger.exception("background refresh of a cached response failed")

    @staticmethod
    def _storage_key(
        key: ResponseKey, lookup: Lookup, policy: CachePolicy, scope: str | None
    ) -> str | None:
        """Where a response of `policy` is kept; None when it is not to be kept
        (anonymous callers never get a private entry)."""
        if lookup.bypass or not policy.cacheable:
            return None
        if not policy.private:
            return key.scoped(PUBLIC)
        return None if scope is None else key.scoped(scope)

    @staticmethod
    def _served(
        produced: Produced,
        entry: CachedResponse | None,
        lookup: Lookup,
        state: CacheState,
        policy: CachePolicy,
    ) -> Served:
        if produced.failed and lookup.fallback is not None:
            return Served.cached(lookup.fallback, CacheState.STALE)
        if entry is not None:
            return Served(produced.body, state, entry=entry, produced=produced, policy=policy)
        return Served(
            produced.body,
            state,
            produced=produced,
            policy=policy if produced.storable else NO_STORE,
        )

    async def _store(
        self, storage_key: str, produced: Produced, policy: CachePolicy, snapshot: Snapshot
    ) -> CachedResponse | None:
        if not produced.storable:
            return None
        entry = CachedResponse(
            produced.body,
            etag_of(produced.body),
            policy.max_age,
            policy.private,
            self.clock(),
            produced.meta,
            # Compressed once here, so that no hit compresses it again.
            tuple(self.precode(produced.body)) if self.precode is not None else (),
        )
        ttl = policy.max_age + max(self.stale_while_revalidate, self.stale_if_error)
        try:
            stored = await self.store.put(
                storage_key, entry.encode(), tags=produced.tags, ttl=ttl, since=snapshot
            )
        except CacheUnavailable:
            return None
        # Not stored: a tag was invalidated while it ran, so what it read may be
        # older than a write some waiter has already seen answered.
        return entry if stored else None

    async def _lock(self, storage_key: str) -> str | None:
        """The lock's token; None when another process holds it; "" when the store
        cannot be reached (then nobody can hold it: run unlocked)."""
        try:
            return await self.store.lock(storage_key, self.lock_ttl)
        except CacheUnavailable:
            return ""

    async def _await_flight(
        self, flight: asyncio.Future[CachedResponse | None]
    ) -> CachedResponse | None:
        try:
            async with asyncio.timeout(self.lock_wait):
                return await asyncio.shield(flight)
        except TimeoutError:
            return None

    async def _wait_for_other_process(self, storage_key: str) -> CachedResponse | None:
        """Polls for the entry another process is filling, for up to `lock_wait` s."""
        deadline = time.monotonic() + self.lock_wait
        delay = 0.005
        while time.monotonic() < deadline:
            await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, 0.1)
            try:
                (entry,) = await self.store.get_decoded([storage_key], CachedResponse.decode)
            except CacheUnavailable:
                return None
            if entry is not None and entry.age(self.clock()) < entry.max_age:
                return entry
        return None


def _keys(key: ResponseKey, scope: str | None) -> list[str]:
    """The public entry's storage key, then the viewer's (for a signed-in viewer)."""
    keys = [key.scoped(PUBLIC)]
    if scope is not None:
        keys.append(key.scoped(scope))
    return keys
