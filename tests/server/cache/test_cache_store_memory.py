"""The in-process result-cache store: bounded in bytes, tombstones bounded in time."""

from __future__ import annotations

from server.cache.store_memory import ENTRY_OVERHEAD, InMemoryCacheStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_the_store_is_an_lru_bounded_in_bytes() -> None:
    entry = 1000 + ENTRY_OVERHEAD + len("k0") + len("Product:0")
    store = InMemoryCacheStore(max_bytes=3 * entry)
    since = await store.snapshot()
    for i in range(3):
        await store.put(f"k{i}", b"x" * 1000, tags=[f"Product:{i}"], ttl=60, since=since)
    await store.get(["k0"])  # k0 is now the most recently used

    await store.put("k3", b"x" * 1000, tags=["Product:3"], ttl=60, since=since)

    values = await store.get(["k0", "k1", "k2", "k3"])
    assert [v is not None for v in values] == [True, False, True, True]
    assert store.size <= store.max_bytes
    assert len(store) == 3


async def test_an_entry_larger_than_the_whole_store_is_not_kept() -> None:
    store = InMemoryCacheStore(max_bytes=500)
    since = await store.snapshot()

    assert not await store.put("k", b"x" * 1000, tags=["Product:1"], ttl=60, since=since)
    assert store.size == 0


async def test_evicted_and_invalidated_entries_leave_no_index_behind() -> None:
    store = InMemoryCacheStore(max_bytes=10_000)
    since = await store.snapshot()
    await store.put("k", b"v", tags=["Product:1", "Category:1"], ttl=60, since=since)

    await store.invalidate(["Product:1"])

    assert store.size == 0
    assert store._by_tag == {}


async def test_tombstones_are_forgotten_after_their_ttl_and_older_reads_store_nothing() -> None:
    clock = Clock()
    store = InMemoryCacheStore(max_bytes=10_000, tombstone_ttl=60, clock=clock)
    old = await store.snapshot()
    await store.invalidate(["Product:1"])
    clock.now += 61
    await store.invalidate(["Other:1"])  # forgets the first tombstone

    assert len(store._tombstones) == 1
    # A read that began before a forgotten invalidation cannot prove it is fresh.
    assert not await store.put("k", b"v", tags=["Review:1"], ttl=60, since=old)
    fresh = await store.snapshot()
    assert await store.put("k", b"v", tags=["Product:1"], ttl=60, since=fresh)


async def test_tombstones_are_bounded_in_number() -> None:
    store = InMemoryCacheStore(max_bytes=10_000, max_tombstones=10)

    for i in range(100):
        await store.invalidate([f"Product:{i}"])

    assert len(store._tombstones) <= 10


async def test_entries_expire_by_the_clock() -> None:
    clock = Clock()
    store = InMemoryCacheStore(max_bytes=10_000, clock=clock)
    since = await store.snapshot()
    await store.put("k", b"v", tags=[], ttl=10, since=since)

    clock.now += 9
    assert await store.get(["k"]) == [b"v"]
    clock.now += 2
    assert await store.get(["k"]) == [None]
    assert store.size == 0
