"""The short-lived viewer cache: fresh hits, expiry, failures never cached, bounded."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from loaders.records import UserRecord
from resolvers.errors import Unauthenticated
from resolvers.viewer import ANONYMOUS, Viewer
from server.auth_cache import AuthCache

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


async def test_failures_are_never_cached() -> None:
    cache = AuthCache(ttl_seconds=5, clock=Clock())
    lookups = Lookups(Unauthenticated("revoked"))
    for _ in range(2):
        with pytest.raises(Unauthenticated):
            await cache.viewer("Bearer gone", lookups)
    assert lookups.calls == 2


async def test_zero_ttl_turns_it_off_and_anonymous_needs_no_lookup() -> None:
    cache = AuthCache(ttl_seconds=0, clock=Clock())
    lookups = Lookups(ALICE)
    await cache.viewer("Bearer t", lookups)
    await cache.viewer("Bearer t", lookups)
    assert lookups.calls == 2
    assert await AuthCache(ttl_seconds=5).viewer(None, lookups) is ANONYMOUS
    assert lookups.calls == 2


async def test_it_is_bounded() -> None:
    cache = AuthCache(ttl_seconds=5, max_entries=3, clock=Clock())
    lookups = Lookups(ALICE)
    for i in range(5):
        await cache.viewer(f"Bearer {i}", lookups)
    await cache.viewer("Bearer 0", lookups)  # evicted: looked up again
    assert lookups.calls == 6
    await cache.viewer("Bearer 4", lookups)  # still cached
    assert lookups.calls == 6
