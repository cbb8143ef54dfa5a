"""The events side of a server process, built in its lifespan.

With REDIS_URL: a subscription to the events channel, whose events this process
applies to its caches (idempotent by event id). Where the relay runs
(EVENTS_RELAY; `auto`: in the server only without Redis), a relay loop too,
woken by this process's own writes and by PostgreSQL's NOTIFY; without Redis it
publishes to this process's change feed (a single process needs no more).

Example:
    async with server_events(settings, engine=engine, ...) as events:
        ...  # serve
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from loaders import Dialect
from resolvers.events import Event
from server.cache.change_feed import ChangeFeed
from server.database import create_engine, create_sessionmaker
from server.events.protocol import EventConsumer, EventPublisher
from server.events.redis_channel import EventSubscriber, RedisEventPublisher, events_channel
from server.events.relay import Relay
from server.events.worker import RelayLoop
from server.observability.metrics import Metrics
from server.redis_guard import create_redis
from server.settings import Settings

logger = logging.getLogger("storefront.events")


@dataclass(slots=True)
class ServerEvents:
    """What runs: the channel subscription (with Redis), the relay loop (where it runs)."""

    subscriber: EventSubscriber | None
    loop: RelayLoop | None


class FeedPublisher:
    """Publishes to this process's change feed: the relay's target without Redis."""

    def __init__(self, feed: ChangeFeed) -> None:
        self._feed = feed

    async def publish(self, events: Sequence[Event]) -> None:
        await self._feed.apply(events)


def count_published(metrics: Metrics | None) -> Callable[[Sequence[Event]], None] | None:
    """The relay's `on_published`: storefront_events_published_total{event}."""
    if metrics is None:
        return None

    def counted(events: Sequence[Event]) -> None:
        for event in events:
            metrics.events_published.labels(event=event.type).inc()

    return counted


def build_relay(
    settings: Settings,
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    dialect: Dialect,
    publisher: EventPublisher,
    consumers: Sequence[EventConsumer] = (),
    metrics: Metrics | None = None,
) -> RelayLoop:
    relay = Relay(
        sessionmaker=sessionmaker,
        dialect=dialect,
        publisher=publisher,
        consumers=consumers,
        batch_size=settings.events_batch_size,
        on_published=count_published(metrics),
    )
    return RelayLoop(
        relay,
        poll_interval=settings.events_poll_interval_ms / 1000,
        listen_url=_listen_url(settings),
    )


def _listen_url(settings: Settings) -> str | None:
    """Where the relay LISTENs: PostgreSQL itself. Through a PgBouncer in transaction
    mode a LISTEN's session is not its own (notifications would go to whichever client
    holds it next), so without DATABASE_DIRECT_URL the relay only polls."""
    if settings.database_direct_url:
        return settings.database_direct_url
    if settings.db_pooler == "pgbouncer":
        logger.info("events: DB_POOLER=pgbouncer and no DATABASE_DIRECT_URL: polling, no LISTEN")
        return None
    return settings.database_url


@contextlib.asynccontextmanager
async def server_events(
    settings: Settings,
    *,
    dialect: Dialect,
    change_feed: ChangeFeed,
    metrics: Metrics | None = None,
) -> AsyncIterator[ServerEvents]:
    async with contextlib.AsyncExitStack() as stack:
        subscriber: EventSubscriber | None = None
        publisher: EventPublisher = FeedPublisher(change_feed)
        if settings.redis_url:
            redis = create_redis(settings, timeout=max(1.0, settings.redis_timeout_ms / 1000))
            assert redis is not None
            stack.push_async_callback(redis.aclose)
            channel = events_channel(redis)
            publisher = RedisEventPublisher(redis, channel=channel)
            subscriber = EventSubscriber(
                settings.redis_url, channel=channel, apply=change_feed.apply
            )
            subscriber.start()
            stack.push_async_callback(subscriber.close)
        loop: RelayLoop | None = None
        if settings.relay_in_server:
            # An engine of its own: the relay never waits for (nor holds) a connection
            # of the requests' pool, and its statements are not the requests'.
            relay_engine = create_engine(settings)
            stack.push_async_callback(relay_engine.dispose)
            loop = build_relay(
                settings,
                sessionmaker=create_sessionmaker(relay_engine),
                dialect=dialect,
                publisher=publisher,
                metrics=metrics,
            )
            stack.callback(change_feed.watch(loop.wake))
            task = asyncio.create_task(loop.run(), name="outbox relay")

            async def stop() -> None:
                assert loop is not None
                loop.stop()
                await task

            stack.push_async_callback(stop)
        yield ServerEvents(subscriber, loop)
