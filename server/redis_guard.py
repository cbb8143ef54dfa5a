"""A bound on every Redis call of a store, and a breaker that keeps it away from a sick Redis.

Every store that reaches Redis on the request path (rate-limit buckets,
persisted queries, the result cache) runs each call inside its own guard's
`bounded()` block. A frozen Redis then costs a request at most the bound, and
only until the breaker opens:

- closed: calls go to Redis; a refused connection, or `failures_to_open`
  failures in a row (one late answer alone may be the event loop's delay, not
  Redis's), open the breaker;
- open: for `retry_after` seconds every call fails at once, without Redis;
- half-open: then one call at a time probes Redis (the others still fail at
  once); its success closes the breaker, its failure opens it again.

A failure raises the store's own "unavailable" exception (the Protocol's, e.g.
`RateLimiterUnavailable`), so callers above `server/` never see redis-py's.
The outage is logged at most once a minute per guard, and its end once.

Give the store a client from `bounded_client`: its socket timeouts answer
first and leave its connections clean; the guard's own deadline (twice the
bound) only backs them up.

Example:
    guard = RedisGuard("rate limiting", timeout=0.05, error=RateLimiterUnavailable,
                       logger=logger, fallback="buckets kept in process")
    async with guard.bounded():
        await redis.get("key")
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError, RedisError

if TYPE_CHECKING:
    from server.settings import Settings

FAILURES_TO_OPEN = 3
OUTAGE_LOG_INTERVAL = 60.0


def bounded_client(url: str, *, timeout: float) -> Redis:
    """A client whose every connect and read waits at most `timeout`, and which never
    retries (a guarded store fails over instead of waiting longer)."""
    return Redis.from_url(
        url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0)
    )


def create_redis(settings: Settings, *, timeout: float | None = None) -> Redis | None:
    """A client whose every socket wait is bounded (by REDIS_TIMEOUT_MS unless `timeout`
    is given), so a Redis that hangs cannot hang requests with it; None without REDIS_URL."""
    if not settings.redis_url:
        return None
    bound = settings.redis_timeout_ms / 1000 if timeout is None else timeout
    return bounded_client(settings.redis_url, timeout=bound)


def operator_redis(settings: Settings) -> Redis | None:
    """A client for long operator work (imports, listings): redis-py's own timeouts."""
    return Redis.from_url(settings.redis_url) if settings.redis_url else None


class RedisGuard:
    """The bound and the breaker of one store's Redis calls (see the module docstring)."""

    def __init__(
        self,
        name: str,
        *,
        timeout: float,
        error: Callable[[str], Exception],
        logger: logging.Logger,
        fallback: str,
        retry_after: float = 1.0,
        failures_to_open: int = FAILURES_TO_OPEN,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`name` and `fallback` (what the store does instead) go into the outage's
        log lines; `error` builds what a failed call raises."""
        self.name = name
        self.timeout = timeout
        self.retry_after = retry_after
        self.failures_to_open = failures_to_open
        self._error = error
        self._logger = logger
        self._fallback = fallback
        self._clock = clock
        self._failures = 0
        self._open_until: float | None = None  # None: closed
        self._probing = False
        self._outage_logged_at: float | None = None
        self._outage_unended = False

    @property
    def is_open(self) -> bool:
        """Whether a call now would fail without asking Redis."""
        if self._open_until is None:
            return False
        return self._probing or self._clock() < self._open_until

    @asynccontextmanager
    async def bounded(self) -> AsyncIterator[None]:
        """Runs the block against Redis within the bound; the store's error when
        Redis fails, is late, or the breaker is open."""
        if self.is_open:
            raise self._error("Redis is unavailable (retrying shortly)")
        probe = self._open_until is not None
        self._probing = probe
        try:
            async with asyncio.timeout(2 * self.timeout):
                yield
        except (RedisError, OSError, TimeoutError) as failure:
            self._failed(failure)
            raise self._error(str(failure) or type(failure).__name__) from failure
        finally:
            if probe:
                self._probing = False
        self._succeeded()

    def _failed(self, failure: BaseException) -> None:
        self._failures += 1
        if (
            self._open_until is not None
            or self._failures >= self.failures_to_open
            or isinstance(failure, ConnectionError)
        ):
            self._open_until = self._clock() + self.retry_after
        now = self._clock()
        last = self._outage_logged_at
        if last is None or now - last >= OUTAGE_LOG_INTERVAL:
            self._outage_logged_at = now
            self._outage_unended = True
            self._logger.warning(
                "%s: Redis unavailable (%s); %s",
                self.name,
                str(failure) or type(failure).__name__,
                self._fallback,
            )

    def _succeeded(self) -> None:
        self._failures = 0
        self._open_until = None
        if self._outage_unended and self._logger.isEnabledFor(logging.INFO):
            self._outage_unended = False
            self._logger.info("%s: Redis answers again", self.name)
