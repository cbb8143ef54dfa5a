"""The subscription through which a process hears every other process's cache invalidations.

One background task per process holds a Redis pub/sub subscription to the
result store's invalidation channel (server/cache/store_redis.py) and hands
each message to `apply`. It also says whether the subscription is `live`: only
then may the near cache be read, since a message missed is a stale entry served.

Live means proven, not assumed: every `heartbeat` seconds the task PINGs on the
subscription's connection; messages and the PONG come back in order on that one
connection, so a PONG proves every invalidation published before the PING was
delivered. The subscription is live until `2 * heartbeat` after the last PING
answered (after the SUBSCRIBE, at first). A PONG late by more than `heartbeat`,
or any error, drops the connection: the listener calls `reset` (the near cache
is emptied: what was published meanwhile is lost) and subscribes again, with a
backoff. So a near entry is never served more than `2 * heartbeat` after an
invalidation this process could not hear, even over a silently dead connection.

Why pub/sub and not RESP3 client-side caching (CLIENT TRACKING): redis-py's
tracking cache (`cache_config`) exists only in its synchronous client; the
asyncio client has none (redis/redis-py#3916, open), and it tracks keys, while an
invalidation here drops whatever a tag's sorted set lists, which the script
knows and the client does not.

Example:
    listener = InvalidationListener(url, channel=store.channel, apply=near_store.apply,
                                    reset=near.clear, heartbeat=1.0)
    listener.start()
    ...
    await listener.close()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import time
from collections.abc import Callable

from redis.asyncio.connection import AbstractConnection, ConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

logger = logging.getLogger("storefront.cache")

FIRST_BACKOFF = 0.05
MIN_WAIT = 0.01


class InvalidationListener:
    """Holds the subscription and tells whether it is live (see the module docstring)."""

    def __init__(
        self,
        redis_url: str,
        *,
        channel: str,
        apply: Callable[[bytes], None],
        reset: Callable[[], None],
        heartbeat: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.channel = channel
        self.heartbeat = heartbeat
        self._apply = apply
        self._reset = reset
        self._clock = clock
        self.client_name = f"storefront-near-{os.getpid()}-{secrets.token_hex(3)}"
        """The name of its connection in Redis's CLIENT LIST."""
        # A bare connection, not redis-py's PubSub: that one, on an error, first
        # reconnects and resubscribes, and only then raises: a gap in which a
        # lost connection still looked live. RESP2 frames: [kind, channel, data].
        self._pool = ConnectionPool.from_url(
            redis_url,
            protocol=2,
            socket_connect_timeout=heartbeat,
            socket_timeout=heartbeat,
            retry=Retry(NoBackoff(), 0),
            client_name=self.client_name,
        )
        self._live_until = 0.0
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.connections = 0
        """Subscriptions made so far (the first, then one per reconnection)."""

    @property
    def live(self) -> bool:
        """Whether every invalidation published until shortly ago has been applied."""
        return self._clock() < self._live_until

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="cache invalidation listener")

    async def close(self) -> None:
        self._live_until = 0.0
        self._closing = True
        task = self._task
        while task is not None and not task.done():
            # A cancellation that lands as a read's own timeout expires is swallowed
            # by it (the read returns None): cancel until the task has ended.
            task.cancel()
            await asyncio.wait({task}, timeout=0.1)
        self._task = None
        await self._pool.disconnect()

    async def _run(self) -> None:
        backoff = FIRST_BACKOFF
        while not self._closing:
            connection = self._pool.make_connection()  # type: ignore[no-untyped-call]
            before = self.connections
            try:
                await self._listen(connection)
            except Exception as failure:  # whatever it was: resubscribe
                if self.connections > before:  # it had been up: say so once, retry soon
                    backoff = FIRST_BACKOFF
                    logger.warning(
                        "cache invalidations: subscription lost (%s); near cache bypassed"
                        " until it is back",
                        str(failure) or type(failure).__name__,
                    )
            finally:
                self._down()
                with contextlib.suppress(RedisError, OSError):
                    await connection.disconnect()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.heartbeat)

    async def _listen(self, connection: AbstractConnection) -> None:
        subscribed_at = self._clock()
        await connection.connect()  # type: ignore[no-untyped-call]
        await connection.send_command("SUBSCRIBE", self.channel)
        pinged: tuple[str, float] | None = None
        next_ping = subscribed_at + self.heartbeat
        count = 0
        while not self._closing:
            now = self._clock()
            if pinged is None and now >= next_ping:
                count += 1
                pinged = (str(count), now)
                next_ping = now + self.heartbeat
                await connection.send_command("PING", pinged[0])
            wait = (pinged[1] + self.heartbeat if pinged else next_ping) - self._clock()
            # A given timeout returns None when it passes; EOF raises at once. Never
            # less than MIN_WAIT: after a stalled event loop, read what arrived first.
            frame = await connection.read_response(
                timeout=max(MIN_WAIT, wait), disconnect_on_error=False
            )
            if frame is None:
                if pinged is not None and self._clock() - pinged[1] > self.heartbeat:
                    raise TimeoutError(f"no answer to a PING within {self.heartbeat:g} s")
                continue
            kind = frame[0]
            if kind == b"message":
                self._apply(frame[2])
            elif kind == b"subscribe":
                # What was published before this point is lost: start empty.
                self._reset()
                self._live_until = subscribed_at + 2 * self.heartbeat
                self.connections += 1
                if self.connections > 1:
                    logger.info("cache invalidations: subscribed again; near cache back on")
            elif kind == b"pong" and pinged is not None and frame[1] == pinged[0].encode():
                self._live_until = pinged[1] + 2 * self.heartbeat
                pinged = None

    def _down(self) -> None:
        self._live_until = 0.0
        self._reset()
