"""The short-lived viewer cache: fresh hits, expiry, unknown tokens remembered briefly,
stale viewers only while the database is unreachable, bounded."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from loaders.records import UserRecord
from resolvers.errors import Unauthenticated
from resolvers.viewer import ANONYMOUS, Viewer
from server.auth.viewer_cache import AuthCache

ALICE = Viewer(UserRecord(1, "a@example.com", "Alice", None, "customer", datetime.now(UTC)))


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Lookups:
    def __init__(self, result: Viewer | Exception) -> None:
        self.result = result
        self.calls = 0

    async def __call__(self, _authorization: str | None) -> Viewer:
        self.calls += 1
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


async def test_a_fresh_entry_is_served_and_an_expired_one_looked_up_again() -> None:
    clock = Clock()
    cache = AuthCache(ttl_seconds=5, clock=clock)
    lookups = Lookups(ALICE)
    assert await cache.viewer("Bearer t", lookups) is ALICE
    clock.now += 4.9
    assert await cache.viewer("Bearer t", lookups) is ALICE
    assert lookups.calls == 1
    clock.now += 0.2
    assert await cache.viewer("Bearer t", lookups) is ALICE
    assert lookups.calls == 2


async def test_unknown_tokens_are_remembered_briefly() -> None:
    clock = Clock()
    cache = AuthCache(ttl_seconds=5, negative_seconds=30, clock=clock)
    lookups = Lookups(Unauthenticated("revoked"))
    for _ in range(3):
        with pytest.raises(Unauthenticated, match="revoked"):
            await cache.viewer("Bearer gone", lookups)
    assert lookups.calls == 1
    clock.now += 30.1
    with pytest.raises(Unauthenticated):
        await cache.viewer("Bearer gone", lookups)
    assert lookups.calls == 2


async def test_other_failures_are_never_cached() -> None:
    cache = AuthCache(ttl_seconds=5, clock=Clock())
    lookups = Lookups(RuntimeError("bug"))
    for _ in range(2):
        with pytest.raises(RuntimeError):
            await cache.viewer("Bearer t", lookups)
    assert lookups.calls == 2


async def test_a_lapsed_viewer_is_trusted_only_while_the_database_is_unreachable() -> None:
    clock = Clock()
    cache = AuthCache(ttl_seconds=5, stale_seconds=60, clock=clock)
    lookups = Lookups(ALICE)
    await cache.viewer("Bearer t", lookups)
    clock.now += 30
    lookups.result = ConnectionRefusedError("database down")
    assert await cache.viewer("Bearer t", lookups) is ALICE  # stale, during the outage
    lookups.result = RuntimeError("a bug is not an outage")
    with pytest.raises(RuntimeError):
        await cache.viewer("Bearer t", lookups)
    lookups.result = ConnectionRefusedError("database down")
    clock.now += 35.1  # past TTL + stale_seconds
    with pytest.raises(ConnectionRefusedError):
        await cache.viewer("Bearer t", lookups)
    with pytest.raises(ConnectionRefusedError):
        await cache.viewer("Bearer never-seen", lookups)
    lookups.result = Unauthenticated("revoked meanwhile")  # the database is back
    with pytest.raises(Unauthenticated):
        await cache.viewer("Bearer t", lookups)


async def test_zero_ttl_turns_it_off_and_anonymous_needs_no_lookup() -> None:
    cache = AuthCache(ttl_seconds=0, clock=Clock())
    lookups = Lookups(ALICE)
    await cache.viewer("Bearer t", lookups)
    await cache.viewer("Bearer t", lookups)
    assert lookups.calls == 2
    assert await AuthCache(ttl_seconds=5).viewer(None, lookups) is ANONYMOUS
    assert lookups.calls == 2


async def test_unknown_tokens_cannot_evict_viewers() -> None:
    cache = AuthCache(ttl_seconds=5, max_entries=3, clock=Clock())
    lookups = Lookups(ALICE)
    await cache.viewer("Bearer alice", lookups)
    lookups.result = Unauthenticated("unknown")
    for i in range(10):
        with pytest.raises(Unauthenticated):
            await cache.viewer(f"Bearer random-{i}", lookups)
    lookups.result = ALICE
    calls = lookups.calls
    assert await cache.viewer("Bearer alice", lookups) is ALICE
    assert lookups.calls == calls


async def test_it_is_bounded() -> None:
    cache = AuthCache(ttl_seconds=5, max_entries=3, clock=Clock())
    lookups = Lookups(ALICE)
    for i in range(5):
        await cache.viewer(f"Bearer {i}", lookups)
    await cache.viewer("Bearer 0", lookups)  # evicted: looked up again
    assert lookups.calls == 6
    await cache.viewer("Bearer 4", lookups)  # still cached
    assert lookups.calls == 6


async def test_concurrent_lookups_of_one_token_share_one() -> None:
    release = asyncio.Event()

    class Slow(Lookups):
        async def __call__(self, authorization: str | None) -> Viewer:
            await release.wait()
            return await super().__call__(authorization)

    cache = AuthCache(ttl_seconds=5, clock=Clock())
    lookups = Slow(ALICE)
    waiting = [asyncio.ensure_future(cache.viewer("Bearer t", lookups)) for _ in range(20)]
    await asyncio.sleep(0)
    release.set()
    assert {id(v) for v in await asyncio.gather(*waiting)} == {id(ALICE)}
    assert lookups.calls == 1
    lookups.result = Unauthenticated("unknown")
    release.clear()
    failing = [asyncio.ensure_future(cache.viewer("Bearer u", lookups)) for _ in range(5)]
    await asyncio.sleep(0)
    release.set()
    outcomes = await asyncio.gather(*failing, return_exceptions=True)
    assert all(isinstance(o, Unauthenticated) for o in outcomes)
    assert lookups.calls == 2
