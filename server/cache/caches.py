"""The result caches of one process, built from settings in the lifespan.

With REDIS_URL the store is Redis (shared by every worker and instance, so an
invalidation in one reaches all), with a near cache in front of it in each
process unless CACHE_NEAR_BYTES is 0; without it, an LRU in this process. The
response cache subscribes to the change feed: every committed write drops what
it changed, responses and entities alike, before its answer is sent. With
compression on, answers are stored compressed in each coding as well.

An in-process cache only sees the writes of its own process, so with sibling
workers (WEB_CONCURRENCY > 1) and no Redis both caches are off: a write served
by one worker would leave the others answering stale data. Separate instances
cannot be detected; the startup line says what this process decided.

Example:
    caches = create_caches(settings, schema)
    caches.start()  # in the running loop: the near cache's subscription
    unsubscribe = change_feed.subscribe(caches.responses.invalidate)
    ...
    await caches.close()
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial

from graphql import GraphQLSchema
from redis.asyncio import Redis

from schema.cache_policy import CachePolicies
from server.cache.entity_cache import LookupCounter, StoreEntityCache
from server.cache.near_cache import NearCache
from server.cache.response_cache import ResponseCache
from server.cache.store_memory import InMemoryCacheStore
from server.cache.store_near import NearCacheStore
from server.cache.store_redis import RedisCacheStore
from server.http.codecs import configured_codecs
from server.http.open_streams import open_streams
from server.redis_guard import bounded_client
from server.settings import WORKERS_VARIABLE, Settings

logger = logging.getLogger("storefront.cache")

# Tombstones must outlive any read that may race with their write: the longest
# an entity is kept, or an execution may run, with a margin.
TOMBSTONE_MARGIN = 60.0


Store = InMemoryCacheStore | RedisCacheStore | NearCacheStore


@dataclass(slots=True)
class Caches:
    store: Store
    responses: ResponseCache
    policies: CachePolicies
    entities: StoreEntityCache | None

    @property
    def redis(self) -> Redis | None:
        """The store's Redis client; None for the in-process store."""
        return None if isinstance(self.store, InMemoryCacheStore) else self.store.redis

    def start(self) -> None:
        """Starts what runs in the background (the near cache's subscription)."""
        if isinstance(self.store, NearCacheStore):
            self.store.start()

    async def close(self) -> None:
        await self.responses.close()
        await self.store.close()


def create_caches(
    settings: Settings, schema: GraphQLSchema, *, entity_counter: LookupCounter | None = None
) -> Caches | None:
    """The caches `settings` ask for; None when the result cache is off.

    Logs one line saying which caches this process runs, and why.
    """
    if not settings.cache_enabled:
        logger.info("result and entity caches off (CACHE_ENABLED=false)")
        return None
    if not settings.redis_url and settings.workers > 1:
        logger.warning(
            "result and entity caches off: %s=%d workers and no REDIS_URL; an in-process "
            "cache would serve answers another worker's write has made stale. "
            "Set REDIS_URL to turn them on",
            WORKERS_VARIABLE,
            settings.workers,
        )
        return None
    execution = settings.execution_timeout_ms / 1000
    tombstone_ttl = max(settings.cache_entity_ttl, execution) + TOMBSTONE_MARGIN
    store: Store
    if settings.redis_url:
        timeout = settings.cache_redis_timeout_ms / 1000
        store = RedisCacheStore(
            bounded_client(settings.redis_url, timeout=timeout),
            timeout=timeout,
            tombstone_ttl=tombstone_ttl,
            owns_client=True,
        )
        near = ""
        if settings.cache_near_bytes > 0:
            store = NearCacheStore(
                store,
                NearCache(max_bytes=settings.cache_near_bytes),
                redis_url=settings.redis_url,
                heartbeat=settings.cache_near_heartbeat_ms / 1000,
            )
            near = f", with a near cache of {settings.cache_near_bytes} bytes in this process"
        logger.info(
            "result and entity caches in Redis, shared by every worker and instance%s", near
        )
    else:
        store = InMemoryCacheStore(
            max_bytes=settings.cache_memory_bytes, tombstone_ttl=tombstone_ttl
        )
        logger.info(
            "result and entity caches in this process only: run more than one process "
            "(workers or instances) with REDIS_URL set, or CACHE_ENABLED=false"
        )
    codecs = configured_codecs(settings)
    responses = ResponseCache(
        store,
        stale_while_revalidate=settings.cache_stale_while_revalidate,
        stale_if_error=settings.cache_stale_if_error,
        lock_wait=settings.cache_lock_wait_ms / 1000,
        lock_ttl=max(execution, settings.cache_lock_wait_ms / 1000),
        precode=None
        if codecs is None
        else partial(open_streams, codecs, min_bytes=settings.compression_min_bytes),
    )
    entities = (
        StoreEntityCache(store, ttl=settings.cache_entity_ttl, counter=entity_counter)
        if settings.cache_entity_ttl > 0
        else None
    )
    return Caches(store, responses, CachePolicies(schema), entities)
