"""A short-lived, bounded in-process cache of authenticated viewers.

Looking a bearer token up is one statement per request: on the order
dashboard, one in seven. Caching the answer for a few seconds removes it from
hot clients' requests. The price is that `storefront token revoke` takes effect
within `AUTH_CACHE_SECONDS` (0 turns the cache off). Entries are keyed by the
token's SHA-256, never the token itself.

Concurrent lookups of one token share one statement (a client whose token has
just lapsed may send dozens of requests at once). Two more answers are kept,
each for a reason:
- Unknown tokens, for `NEGATIVE_SECONDS` in an LRU of their own (so a flood of
  random tokens neither reaches the database each time nor evicts real viewers).
- Viewers past their TTL, for `stale_seconds` more, used only while the
  database cannot be reached: during an outage a signed-in client can still be
  served public answers from the result cache. Once the database answers again,
  the token is looked up as usual, so a revoked token stops working.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from cachetools import TTLCache

from resolvers.auth import hash_token
from resolvers.errors import Unauthenticated
from resolvers.viewer import ANONYMOUS, Viewer
from schema.errors import is_database_unavailable

logger = logging.getLogger("storefront.auth")

MAX_ENTRIES = 10_000
NEGATIVE_SECONDS = 30.0
STALE_LOG_INTERVAL = 60.0

T = TypeVar("T")


class AuthCache:
    def __init__(
        self,
        *,
        ttl_seconds: float,
        stale_seconds: float = 60.0,
        negative_seconds: float = NEGATIVE_SECONDS,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self.stale_seconds = stale_seconds
        self.negative_seconds = negative_seconds
        self.max_entries = max_entries
        self._clock = clock
        # LRUs whose entries expire: a viewer is fresh until the time it holds, then
        # kept `stale_seconds` more for outages; an unknown token, `negative_seconds`.
        self._entries: TTLCache[str, tuple[float, Viewer]] = TTLCache(
            maxsize=max_entries, ttl=ttl_seconds + stale_seconds, timer=clock
        )
        self._unknown: TTLCache[str, Unauthenticated] = TTLCache(
            maxsize=max_entries, ttl=negative_seconds, timer=clock
        )
        self._lookups: dict[str, asyncio.Future[Viewer]] = {}
        self._stale_logged_at = -STALE_LOG_INTERVAL

    def knows(self, authorization: str | None) -> bool:
        """Whether `authorization` is answered without a lookup: absent, or a fresh viewer."""
        if not authorization:
            return True
        cached = self._entries.get(hash_token(authorization))
        return cached is not None and cached[0] > self._clock()

    def fresh(self, authorization: str | None) -> Viewer | None:
        """The viewer `authorization` is answered with without a lookup (anonymous when
        absent, a fresh cached one), else None: `knows` and `viewer` in one lookup."""
        if not authorization:
            return ANONYMOUS
        try:  # indexing: TTLCache.get checks the entry twice (in, then [])
            cached = self._entries[hash_token(authorization)]
        except KeyError:
            return None
        return cached[1] if cached[0] > self._clock() else None

    async def viewer(
        self,
        authorization: str | None,
        authenticate: Callable[[str | None], Awaitable[Viewer]],
    ) -> Viewer:
        """The viewer of `authorization`, from the cache when fresh, else `authenticate`d.

        Raises Unauthenticated for an unknown token (remembered for a while).
        """
        if not authorization:
            return ANONYMOUS
        if self.ttl_seconds <= 0:
            return await authenticate(authorization)
        key = hash_token(authorization)
        now = self._clock()
        cached = self._entries.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        unknown = self._unknown.get(key)
        if unknown is not None:
            raise unknown
        flight = self._lookups.get(key)
        if flight is not None:
            return await asyncio.shield(flight)
        flight = asyncio.get_running_loop().create_future()
        self._lookups[key] = flight
        try:
            viewer = await self._look_up(key, authorization, authenticate, cached, now)
        except Exception as error:
            flight.set_exception(error)
            flight.exception()  # retrieved: no warning when nobody else was waiting
            raise
        except BaseException:
            flight.cancel()
            raise
        else:
            flight.set_result(viewer)
            return viewer
        finally:
            del self._lookups[key]

    async def _look_up(
        self,
        key: str,
        authorization: str,
        authenticate: Callable[[str | None], Awaitable[Viewer]],
        cached: tuple[float, Viewer] | None,
        now: float,
    ) -> Viewer:
        try:
            viewer = await authenticate(authorization)
        except Unauthenticated as error:
            self._remember(self._unknown, key, error)
            raise
        except Exception as error:
            if cached is None or now >= cached[0] + self.stale_seconds:
                raise
            if not is_database_unavailable(error):
                raise
            self._log_stale(error)
            return cached[1]
        self._unknown.pop(key, None)
        self._remember(self._entries, key, (now + self.ttl_seconds, viewer))
        return viewer

    def _remember(self, entries: TTLCache[str, T], key: str, value: T) -> None:
        if entries.maxsize > 0:  # cachetools refuses any item when maxsize is 0
            entries[key] = value

    def _log_stale(self, error: Exception) -> None:
        now = self._clock()
        if now - self._stale_logged_at >= STALE_LOG_INTERVAL:
            self._stale_logged_at = now
            logger.warning(
                "database unreachable: trusting cached viewers up to %g s past their TTL (%s)",
                self.stale_seconds,
                type(error).__name__,
            )
