"""Result-cache stores: the same contract in process and in Redis."""

from __future__ import annotations

import asyncio

from server.cache.protocol import ALL_TYPES, ResultCache, Snapshot


async def put(store: ResultCache, key: str, value: bytes, *tags: str, ttl: float = 60) -> bool:
    since = await store.snapshot()
    return await store.put(key, value, tags=tags, ttl=ttl, since=since)


async def test_a_response_round_trips(store: ResultCache) -> None:
    assert await put(store, "k", b"body\nwith a newline", "Product:1")

    values = await store.get(["k", "unknown"])

    assert values == [b"body\nwith a newline", None]


async def test_invalidating_a_tag_drops_exactly_its_responses(store: ResultCache) -> None:
    await put(store, "lamp", b"1", "Product:1", "Category:1")
    await put(store, "chair", b"2", "Product:2", "Category:1")
    await put(store, "list", b"3", "Product:list")

    await store.invalidate(["Product:1"])
    assert await store.get(["lamp", "chair", "list"]) == [None, b"2", b"3"]

    await store.invalidate(["Category:1", "Product:list"])
    assert await store.get(["lamp", "chair", "list"]) == [None, None, None]


async def test_a_read_older_than_an_invalidation_of_its_tags_is_not_stored(
    store: ResultCache,
) -> None:
    before = await store.snapshot()  # a read begins ...
    await store.invalidate(["Product:1"])  # ... a write commits meanwhile ...

    assert not await store.put("k", b"old", tags=["Product:1"], ttl=60, since=before)
    assert await store.put("other", b"x", tags=["Product:2"], ttl=60, since=before)
    assert await store.get(["k", "other"]) == [None, b"x"]
    # A read that began after the write stores.
    assert await put(store, "k", b"new", "Product:1")


async def test_entities_round_trip_and_are_invalidated(store: ResultCache) -> None:
    since = await store.snapshot()
    await store.put_entities({"Product:1": b"lamp", "Product:2": b"chair"}, ttl=60, since=since)

    values, _ = await store.get_entities(["Product:1", "Product:2", "Product:3"])
    assert values == [b"lamp", b"chair", None]

    await store.invalidate(["Product:1"])
    assert (await store.get_entities(["Product:1", "Product:2"]))[0] == [None, b"chair"]


async def test_an_entity_read_before_an_invalidation_reads_as_missing(store: ResultCache) -> None:
    _, before = await store.get_entities(["Product:1"])  # miss; the row is read ...
    await store.invalidate(["Product:1"])  # ... a write commits ...
    await store.put_entities({"Product:1": b"old"}, ttl=60, since=before)  # ... old row stored

    assert (await store.get_entities(["Product:1"]))[0] == [None]


async def test_type_wide_invalidation(store: ResultCache) -> None:
    await put(store, "product", b"1", "Product:1")
    await put(store, "reviews", b"2", "Review:list:product_id=1")
    since = await store.snapshot()
    await store.put_entities({"Product:1": b"p", "Review:3": b"r"}, ttl=60, since=since)

    await store.invalidate_types(["Product"])

    assert await store.get(["product", "reviews"]) == [None, b"2"]
    assert (await store.get_entities(["Product:1", "Review:3"]))[0] == [None, b"r"]

    await store.invalidate_types([ALL_TYPES])
    assert await store.get(["reviews"]) == [None]
    assert (await store.get_entities(["Review:3"]))[0] == [None]


async def test_a_read_before_a_type_wide_invalidation_stores_what_reads_as_missing(
    store: ResultCache,
) -> None:
    before = await store.snapshot()
    await store.invalidate_types(["Product"])

    await store.put("k", b"old", tags=["Product:1"], ttl=60, since=before)

    assert await store.get(["k"]) == [None]


async def test_entries_expire(store: ResultCache) -> None:
    await put(store, "k", b"v", "Product:1", ttl=0.05)
    since = await store.snapshot()
    await store.put_entities({"Product:1": b"p"}, ttl=0.05, since=since)

    await asyncio.sleep(0.12)

    assert await store.get(["k"]) == [None]
    assert (await store.get_entities(["Product:1"]))[0] == [None]


async def test_a_lock_has_one_holder_until_released(store: ResultCache) -> None:
    token = await store.lock("k", 5)
    assert token is not None
    assert await store.lock("k", 5) is None

    await store.unlock("k", "not-the-token")
    assert await store.lock("k", 5) is None

    await store.unlock("k", token)
    assert await store.lock("k", 5) is not None


async def test_a_lock_expires(store: ResultCache) -> None:
    assert await store.lock("k", 0.05) is not None
    await asyncio.sleep(0.1)
    assert await store.lock("k", 5) is not None


async def test_snapshots_advance_with_invalidations(store: ResultCache) -> None:
    first = await store.snapshot()
    await store.invalidate(["Product:1"])
    second = await store.snapshot()

    assert second.clock > first.clock
    assert isinstance(second, Snapshot)
