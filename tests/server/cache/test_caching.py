"""Which caches a process runs: in-process ones only when it has no sibling workers."""

from __future__ import annotations

import logging

import pytest
from graphql import GraphQLSchema

from schema import create_schema
from server.cache.caches import create_caches
from server.cache.store_memory import InMemoryCacheStore
from server.cache.store_near import NearCacheStore
from server.cache.store_redis import RedisCacheStore
from server.settings import Settings, SettingsError, announce_workers


@pytest.fixture(scope="module")
def schema() -> GraphQLSchema:
    return create_schema()._schema


def _caches_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "storefront.cache"]


def test_one_worker_caches_in_process_and_says_so(
    schema: GraphQLSchema, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    caches = create_caches(Settings.from_env({}), schema)

    assert caches is not None
    assert isinstance(caches.store, InMemoryCacheStore)
    assert caches.entities is not None
    [line] = _caches_logged(caplog)
    assert "this process only" in line
    assert "REDIS_URL" in line


def test_sibling_workers_without_redis_run_no_cache(
    schema: GraphQLSchema, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)

    assert create_caches(Settings.from_env({"WEB_CONCURRENCY": "2"}), schema) is None
    [line] = _caches_logged(caplog)
    assert "caches off" in line
    assert "WEB_CONCURRENCY=2" in line
    assert line.endswith("Set REDIS_URL to turn them on")


async def test_sibling_workers_with_redis_share_it(
    schema: GraphQLSchema, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    env = {"WEB_CONCURRENCY": "4", "REDIS_URL": "redis://127.0.0.1:6379/15"}
    caches = create_caches(Settings.from_env(env), schema)

    assert caches is not None
    assert isinstance(caches.store, NearCacheStore)
    assert isinstance(caches.store.inner, RedisCacheStore)
    await caches.close()  # nothing was connected: building a client does not dial
    [line] = _caches_logged(caplog)
    assert "in Redis, shared by every worker and instance" in line
    assert "with a near cache of 33554432 bytes in this process" in line


async def test_near_cache_bytes_zero_leaves_the_redis_store_alone(schema: GraphQLSchema) -> None:
    env = {"REDIS_URL": "redis://127.0.0.1:6379/15", "CACHE_NEAR_BYTES": "0"}
    caches = create_caches(Settings.from_env(env), schema)

    assert caches is not None
    assert isinstance(caches.store, RedisCacheStore)
    await caches.close()


def test_cache_enabled_false_wins(schema: GraphQLSchema) -> None:
    assert create_caches(Settings.from_env({"CACHE_ENABLED": "false"}), schema) is None


def test_the_worker_count_is_announced_to_the_workers_environment() -> None:
    env: dict[str, str] = {"WEB_CONCURRENCY": "8"}
    announce_workers(2, env)

    assert env == {"WEB_CONCURRENCY": "2"}
    assert Settings.from_env(env).workers == 2
    assert Settings.from_env({}).workers == 1
    with pytest.raises(SettingsError, match="WEB_CONCURRENCY"):
        Settings.from_env({"WEB_CONCURRENCY": "0"})
