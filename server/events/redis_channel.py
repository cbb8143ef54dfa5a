"""The Redis channel of events: the relay publishes every event on it, and every API
instance subscribes to it to apply each event to its caches.

Pub/sub delivers to whoever is subscribed at that moment: an instance that is not
(starting, reconnecting) misses what is published meanwhile. That is safe for the
caches: the process that wrote invalidated the shared store before answering, and
a near cache whose invalidation subscription drops empties itself
(server/cache/invalidation_listener.py). The channel is what carries events to
other processes (caches of a writer that died after its commit, and later
subscriptions); it is not a durable queue: the outbox is.

Example:
    publisher = RedisEventPublisher(redis, channel=events_channel(redis))
    subscriber = EventSubscriber(url, channel=..., apply=change_feed.apply)
    subscriber.start()
    ...
    await subscriber.close()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

from redis.asyncio import Redis
from redis.exceptions import RedisError

from resolvers.events import Event
from server.events.messages import decode, encode

logger = logging.getLogger("storefront.events")

FIRST_BACKOFF = 0.05
MAX_BACKOFF = 2.0


def events_channel(redis: Redis) -> str:
    """The channel of `redis`'s database (pub/sub spans databases: the db keeps
    deployments sharing one server apart)."""
    db = redis.connection_pool.connection_kwargs.get("db", 0)
    return f"storefront:{db}:events"


class RedisEventPublisher:
    """Implements server.events.protocol.EventPublisher: one PUBLISH per event, pipelined."""

    def __init__(self, redis: Redis, *, channel: str | None = None) -> None:
        self.redis = redis
        self.channel = channel or events_channel(redis)

    async def publish(self, events: Sequence[Event]) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            for event in events:
                pipe.publish(self.channel, encode(event))
            await pipe.execute()


class EventSubscriber:
    """One background task holding a subscription to the channel; each event received
    goes to `apply` (which must be idempotent by event id). Reconnects with a backoff."""

    def __init__(
        self,
        redis_url: str,
        *,
        channel: str,
        apply: Callable[[Sequence[Event]], Awaitable[None]],
        timeout: float = 1.0,
    ) -> None:
        self.channel = channel
        self._url = redis_url
        self._apply = apply
        self._timeout = timeout
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.subscribed = asyncio.Event()
        """Set while the subscription is up."""

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="event subscriber")

    async def close(self) -> None:
        self._closing = True
        task, self._task = self._task, None
        while task is not None and not task.done():
            # A cancellation that lands as a read's own timeout expires is swallowed
            # by it (the read returns None): cancel until the task has ended.
            task.cancel()
            await asyncio.wait({task}, timeout=0.1)

    async def _run(self) -> None:
        backoff = FIRST_BACKOFF
        while not self._closing:
            client = Redis.from_url(
                self._url,
                socket_connect_timeout=self._timeout,
                health_check_interval=max(1, int(self._timeout * 5)),
            )
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                self.subscribed.set()
                backoff = FIRST_BACKOFF
                while not self._closing:
                    message = await pubsub.get_message(timeout=self._timeout)
                    if message is not None and message["type"] == "message":
                        await self._receive(message["data"])
            except (RedisError, OSError) as failure:
                logger.warning("events: subscription lost (%s); retrying", failure)
            finally:
                self.subscribed.clear()
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
                with contextlib.suppress(RedisError, OSError):
                    await client.aclose()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)

    async def _receive(self, data: bytes) -> None:
        try:
            event = decode(data)
        except (ValueError, KeyError, TypeError):
            logger.warning("events: dropped a message that is not an event")
            return
        try:
            await self._apply([event])
        except Exception:
            logger.exception("events: applying %s failed", event.event_id)
