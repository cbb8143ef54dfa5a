"""Persisted-query stores: the same contract in process and in Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from server.persisted.protocol import PersistedQueryStore, TrustedDocument, sha256_hex
from server.persisted.stores import InMemoryPersistedQueryStore, RedisPersistedQueryStore
from tests.redis_support import clear_persisted, require_redis_url


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[PersistedQueryStore]:
    if request.param == "memory":
        yield InMemoryPersistedQueryStore(apq_ttl_seconds=60, max_unknown=3)
        return
    client = Redis.from_url(require_redis_url())
    await clear_persisted(client)
    yield RedisPersistedQueryStore(client, apq_ttl_seconds=60, max_unknown=3, timeout=1.0)
    await clear_persisted(client)
    await client.aclose()


def doc(text: str, document_id: str | None = None) -> TrustedDocument:
    return TrustedDocument(id=document_id or sha256_hex(text), document=text, name="Op")


async def test_automatic_round_trip(store: PersistedQueryStore) -> None:
    text = "{ __typename }"
    assert await store.get_automatic(sha256_hex(text)) is None

    await store.put_automatic(sha256_hex(text), text, registrant="t")

    assert await store.get_automatic(sha256_hex(text)) == text


async def test_trusted_found_by_id_and_by_sha256(store: PersistedQueryStore) -> None:
    relay = doc("query A { __typename }", "md5-like-id")
    apollo = doc("query B { __typename }")

    await store.put_trusted([relay, apollo])

    assert await store.get_trusted("md5-like-id") == relay
    assert await store.get_trusted(relay.sha256) == relay
    assert await store.get_trusted(apollo.id) == apollo
    assert await store.get_trusted("nope") is None
    assert [d.id for d in await store.list_trusted()] == sorted([relay.id, apollo.id])


async def test_remove_trusted_removes_its_sha256_too(store: PersistedQueryStore) -> None:
    relay = doc("query A { __typename }", "relay-1")
    await store.put_trusted([relay, doc("query B { __typename }")])

    assert await store.remove_trusted(["relay-1", "missing"]) == 1

    assert await store.get_trusted("relay-1") is None
    assert await store.get_trusted(relay.sha256) is None
    assert len(await store.list_trusted()) == 1
    assert await store.remove_trusted([]) == 0


async def test_trusted_documents_are_not_automatic_ones(store: PersistedQueryStore) -> None:
    trusted = doc("query A { __typename }")
    await store.put_trusted([trusted])

    assert await store.get_automatic(trusted.sha256) is None


async def test_unknown_documents_are_counted_up_to_a_bound(store: PersistedQueryStore) -> None:
    assert [await store.note_unknown("a") for _ in range(3)] == [1, 2, 3]
    assert await store.note_unknown("b") == 1
    assert await store.note_unknown("c") == 1
    assert await store.note_unknown("d") == 0  # the table is full: not counted
    assert await store.note_unknown("a") == 4  # known ones still are
    assert await store.unknown_counts() == {"a": 4, "b": 1, "c": 1}


async def test_redis_keys_are_namespaced_and_apq_entries_expire() -> None:
    client = Redis.from_url(require_redis_url())
    await clear_persisted(client)
    store = RedisPersistedQueryStore(
        client, apq_ttl_seconds=120, registration_window_seconds=600, timeout=1.0
    )
    try:
        text = "{ __typename }"
        await store.put_automatic(sha256_hex(text), text, registrant="ip:203.0.113.7")
        await store.put_trusted([doc("query A { __typename }")])

        keys = sorted([key.decode() async for key in client.scan_iter(match="sf:v1:pq:*")])
        assert keys == [
            "sf:v1:pq:apq-quota:ip:203.0.113.7",
            f"sf:v1:pq:apq:{sha256_hex(text)}",
            "sf:v1:pq:trusted",
            "sf:v1:pq:trusted-sha256",
        ]
        assert 0 < await client.ttl(keys[0]) <= 600  # the registrant's window
        assert await client.get(keys[0]) == b"1"
        assert 0 < await client.ttl(keys[1]) <= 120
        assert await client.ttl("sf:v1:pq:trusted") == -1  # trusted documents never expire
        assert await client.ttl("sf:v1:pq:trusted-sha256") == -1
    finally:
        await clear_persisted(client)
        await client.aclose()


@pytest.fixture(params=["memory", "redis"])
async def quota_store(request: pytest.FixtureRequest) -> AsyncIterator[PersistedQueryStore]:
    """Each store, with a quota of 2 new documents per client per second."""
    quota = {"registrations_per_client": 2, "registration_window_seconds": 1}
    if request.param == "memory":
        yield InMemoryPersistedQueryStore(apq_ttl_seconds=60, **quota)
        return
    client = Redis.from_url(require_redis_url())
    await clear_persisted(client)
    yield RedisPersistedQueryStore(client, apq_ttl_seconds=60, timeout=1.0, **quota)
    await clear_persisted(client)
    await client.aclose()


async def test_each_client_registers_a_quota_of_new_documents_per_window(
    quota_store: PersistedQueryStore,
) -> None:
    texts = [f"query Q{i} {{ __typename }}" for i in range(5)]

    async def put(i: int, registrant: str) -> bool:
        return await quota_store.put_automatic(
            sha256_hex(texts[i]), texts[i], registrant=registrant
        )

    assert [await put(0, "ip:a"), await put(1, "ip:a"), await put(2, "ip:a")] == [
        True,
        True,
        False,
    ]
    assert await quota_store.get_automatic(sha256_hex(texts[2])) is None
    assert await put(0, "ip:a")  # already stored: costs no quota, and says so
    assert await put(2, "ip:b")  # another client has a quota of its own
    assert await put(2, "ip:a")  # stored by now, by b

    await asyncio.sleep(1.1)  # a new window
    assert await put(3, "ip:a")
    assert await quota_store.get_automatic(sha256_hex(texts[3])) == texts[3]


async def test_memory_store_expires_entries_after_the_ttl() -> None:
    now = [0.0]
    store = InMemoryPersistedQueryStore(apq_ttl_seconds=10, clock=lambda: now[0])
    await store.put_automatic("h", "{ a }", registrant="t")
    now[0] = 9.9
    assert await store.get_automatic("h") == "{ a }"
    now[0] = 10.0
    assert await store.get_automatic("h") is None
    assert len(store) == 0


async def test_memory_store_is_an_lru_bounded_by_count_and_bytes() -> None:
    store = InMemoryPersistedQueryStore(max_entries=3, max_bytes=100)
    for key in "abc":
        await store.put_automatic(key, key * 10, registrant="t")
    await store.get_automatic("a")  # now the most recent
    await store.put_automatic("d", "d" * 10, registrant="t")
    assert [await store.get_automatic(k) is not None for k in "abcd"] == [True, False, True, True]

    await store.put_automatic(
        "e", "e" * 90, registrant="t"
    )  # 10 + 10 + 10 + 90 > 100: the oldest go
    assert store.automatic_bytes <= 100
    assert await store.get_automatic("e") == "e" * 90
    await store.put_automatic(
        "huge", "x" * 101, registrant="t"
    )  # larger than the whole store: not kept
    assert await store.get_automatic("huge") is None


async def test_memory_store_keeps_trusted_documents_beyond_its_bounds() -> None:
    store = InMemoryPersistedQueryStore(max_entries=1, max_bytes=10)
    documents = [doc(f"query Q{i} {{ __typename }}") for i in range(20)]
    await store.put_trusted(documents)
    for i in range(5):
        await store.put_automatic(str(i), "{ a }", registrant="t")

    assert len(await store.list_trusted()) == 20
