"""A short-lived, bounded in-process cache of authenticated viewers.

Looking a bearer token up is one statement per request: on the order
dashboard, one in seven. Caching the answer for a few seconds removes it from
hot clients' requests. The price is that `storefront token revoke` takes effect
within `AUTH_CACHE_SECONDS` (0 turns the cache off). Only successful lookups
are cached, keyed by the token's SHA-256, never the token itself.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from resolvers.auth import hash_token
from resolvers.viewer import ANONYMOUS, Viewer

MAX_ENTRIES = 10_000


class AuthCache:
    def __init__(
        self,
        *,
        ttl_seconds: float,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, Viewer]] = OrderedDict()

    async def viewer(
        self,
        authorization: str | None,
        authenticate: Callable[[str | None], Awaitable[Viewer]],
    ) -> Viewer:
        """The viewer of `authorization`, from the cache when fresh, else `authenticate`d."""
        if not authorization or self.ttl_seconds <= 0:
            return ANONYMOUS if not authorization else await authenticate(authorization)
        key = hash_token(authorization)
        now = self._clock()
        cached = self._entries.get(key)
        if cached is not None and cached[0] > now:
            self._entries.move_to_end(key)
            return cached[1]
        viewer = await authenticate(authorization)
        self._entries[key] = (now + self.ttl_seconds, viewer)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return viewer
