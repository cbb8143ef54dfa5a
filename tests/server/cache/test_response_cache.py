"""The response cache on its own: lookups, scopes, single flight, stale answers, headers."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping, Sequence

import orjson

from resolvers.changes import Changes
from schema.cache_policy import NO_STORE, CachePolicy
from server.cache.cached_response import (
    CachedResponse,
    CacheState,
    Produced,
    ResponseKey,
    Served,
    etag_of,
    failed_for_infrastructure,
    with_extensions,
)
from server.cache.protocol import CacheUnavailable, ResultCache, Snapshot
from server.cache.response_cache import ResponseCache
from server.cache.store_memory import InMemoryCacheStore
from server.http.cache_headers import cache_headers, for_media_type, not_modified

KEY = ResponseKey.of("a" * 64, {"b": 2, "a": 1}, "Op")
PUBLIC_POLICY = CachePolicy(60)
PRIVATE_POLICY = CachePolicy(60, private=True)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class Runs:
    """A `produce` that counts its runs and can be held, made to fail, or to err."""

    def __init__(self, body: bytes = b'{"data":{"x":1}}', tags: Collection[str] = ("Product:1",)):
        self.body = body
        self.tags = frozenset(tags)
        self.count = 0
        self.gate: asyncio.Event | None = None
        self.failed = False
        self.storable = True
        self.started = asyncio.Event()

    async def __call__(self) -> Produced:
        self.count += 1
        self.started.set()
        if self.gate is not None:
            await self.gate.wait()
        return Produced(self.body, storable=self.storable, failed=self.failed, tags=self.tags)


async def miss_then_fill(
    cache: ResponseCache,
    runs: Runs,
    *,
    policy: CachePolicy = PUBLIC_POLICY,
    scope: str | None = None,
    key: ResponseKey = KEY,
    arrivals: Arrivals | None = None,
) -> Served:
    lookup = await cache.lookup(key, scope=scope)
    assert lookup.usable is None
    if arrivals is not None:
        arrivals.arrive()
    return await cache.fill(key, lookup, policy=policy, scope=scope, produce=runs)


class Arrivals:
    """Counts tasks past their lookup: the tests open the gate only once every task
    has missed (a fixed sleep is too short when Redis answers slowly on a busy
    machine, and a task looking up late would find the stored hit)."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.count = 0
        self.all_in = asyncio.Event()

    def arrive(self) -> None:
        self.count += 1
        if self.count == self.expected:
            self.all_in.set()

    async def wait(self, runs: Runs) -> None:
        async with asyncio.timeout(10):
            await self.all_in.wait()
            await runs.started.wait()
        await asyncio.sleep(0.02)  # let the last ones reach their wait


def test_keys_canonicalize_variables_and_separate_scopes() -> None:
    same = ResponseKey.of("a" * 64, {"a": 1, "b": 2}, "Op")

    assert same == KEY
    assert KEY.scoped("public") != KEY.scoped("user:1:customer")
    assert ResponseKey.of("a" * 64, None, None) == ResponseKey.of("a" * 64, {}, "")


async def test_a_miss_is_stored_and_then_served_as_the_same_bytes(store: ResultCache) -> None:
    cache = ResponseCache(store)
    runs = Runs()

    served = await miss_then_fill(cache, runs)
    lookup = await cache.lookup(KEY, scope=None)

    assert served.state is CacheState.MISS
    assert lookup.state is CacheState.HIT
    assert lookup.usable is not None
    assert lookup.usable.body == runs.body
    assert lookup.usable.etag == etag_of(runs.body)
    assert runs.count == 1


async def test_private_entries_are_served_only_to_their_viewer(store: ResultCache) -> None:
    cache = ResponseCache(store)
    await miss_then_fill(cache, Runs(b"A's orders"), policy=PRIVATE_POLICY, scope="user:1:customer")

    for scope in (None, "user:2:customer", "user:1:admin"):
        assert (await cache.lookup(KEY, scope=scope)).usable is None
    mine = (await cache.lookup(KEY, scope="user:1:customer")).usable
    assert mine is not None
    assert mine.body == b"A's orders"


async def test_an_anonymous_caller_never_gets_a_private_entry_stored(store: ResultCache) -> None:
    cache = ResponseCache(store)
    runs = Runs()

    served = await miss_then_fill(cache, runs, policy=PRIVATE_POLICY, scope=None)
    again = await miss_then_fill(cache, runs, policy=PRIVATE_POLICY, scope=None)

    assert served.state is again.state is CacheState.BYPASS
    assert served.policy == NO_STORE
    assert runs.count == 2


async def test_the_public_entry_is_preferred(store: ResultCache) -> None:
    cache = ResponseCache(store)
    await miss_then_fill(cache, Runs(b"public"))

    found = (await cache.lookup(KEY, scope="user:1:customer")).usable

    assert found is not None
    assert found.body == b"public"


async def test_uncacheable_answers_are_not_stored(store: ResultCache) -> None:
    cache = ResponseCache(store)
    with_errors = Runs()
    with_errors.storable = False

    assert (await miss_then_fill(cache, with_errors)).policy == NO_STORE
    assert (await miss_then_fill(cache, Runs(), policy=NO_STORE)).state is CacheState.BYPASS
    assert (await cache.lookup(KEY, scope=None)).usable is None


async def test_concurrent_identical_misses_run_once(store: ResultCache) -> None:
    cache = ResponseCache(store)
    runs = Runs()
    runs.gate = asyncio.Event()

    arrivals = Arrivals(50)
    pending = [
        asyncio.create_task(miss_then_fill(cache, runs, arrivals=arrivals)) for _ in range(50)
    ]
    await arrivals.wait(runs)
    runs.gate.set()
    served = await asyncio.gather(*pending)

    assert runs.count == 1
    assert sorted(s.state.value for s in served) == ["HIT"] * 49 + ["MISS"]
    assert {s.body for s in served} == {runs.body}


async def test_waiters_run_themselves_when_the_run_is_not_storable(store: ResultCache) -> None:
    cache = ResponseCache(store)
    runs = Runs()
    runs.gate = asyncio.Event()
    runs.storable = False

    arrivals = Arrivals(3)
    pending = [
        asyncio.create_task(miss_then_fill(cache, runs, arrivals=arrivals)) for _ in range(3)
    ]
    await arrivals.wait(runs)
    runs.gate.set()
    await asyncio.gather(*pending)

    assert runs.count == 3


async def test_waiters_do_not_take_a_result_a_write_made_stale(store: ResultCache) -> None:
    """A write committed while the run was reading: whoever asks after it must not
    get what the run read, nor find it stored."""
    cache = ResponseCache(store)
    old = Runs(b"old")
    old.gate = asyncio.Event()
    leader = asyncio.create_task(miss_then_fill(cache, old))
    await asyncio.sleep(0.02)

    await cache.invalidate(Changes(frozenset({"Product:1"})))
    follower = asyncio.create_task(miss_then_fill(cache, Runs(b"new")))
    await asyncio.sleep(0.02)
    old.gate.set()
    answers = await asyncio.gather(leader, follower)

    assert [a.body for a in answers] == [b"old", b"new"]
    found = (await cache.lookup(KEY, scope=None)).usable
    assert found is not None
    assert found.body == b"new"


async def test_waiters_give_up_after_the_bound(store: ResultCache) -> None:
    cache = ResponseCache(store, lock_wait=0.05)
    slow = Runs()
    slow.gate = asyncio.Event()
    leader = asyncio.create_task(miss_then_fill(cache, slow))
    await asyncio.sleep(0.01)

    follower = await miss_then_fill(cache, Runs(b"own"))

    assert follower.body == b"own"
    slow.gate.set()
    await leader


async def test_two_processes_share_one_run_through_the_store_lock(store: ResultCache) -> None:
    first, second = ResponseCache(store), ResponseCache(store)
    runs = Runs()
    runs.gate = asyncio.Event()

    arrivals = Arrivals(10)
    pending = [
        asyncio.create_task(miss_then_fill(cache, runs, arrivals=arrivals))
        for cache in (first, second) * 5
    ]
    await arrivals.wait(runs)
    runs.gate.set()
    served = await asyncio.gather(*pending)

    assert runs.count == 1
    assert {s.body for s in served} == {runs.body}


async def test_stale_while_revalidate_serves_stale_then_fresh(store: ResultCache) -> None:
    clock = Clock()
    cache = ResponseCache(store, stale_while_revalidate=30, clock=clock)
    await miss_then_fill(cache, Runs(b"old"))
    clock.now += 61

    lookup = await cache.lookup(KEY, scope=None)
    assert lookup.state is CacheState.STALE
    assert lookup.usable is not None
    assert lookup.usable.body == b"old"
    refresh = Runs(b"new")
    cache.revalidate(KEY, lookup, scope=None, produce=refresh)
    cache.revalidate(KEY, lookup, scope=None, produce=refresh)  # one refresh at a time
    await asyncio.sleep(0.05)

    fresh = await cache.lookup(KEY, scope=None)
    assert fresh.state is CacheState.HIT
    assert fresh.usable is not None
    assert fresh.usable.body == b"new"
    assert refresh.count == 1


async def test_an_entry_past_every_window_is_a_miss(store: ResultCache) -> None:
    clock = Clock()
    cache = ResponseCache(store, stale_while_revalidate=10, stale_if_error=20, clock=clock)
    await miss_then_fill(cache, Runs())
    clock.now += 60 + 21

    lookup = await cache.lookup(KEY, scope=None)

    assert lookup.state is CacheState.MISS
    assert lookup.fallback is None


async def test_stale_if_error_serves_the_old_entry_when_the_run_fails(store: ResultCache) -> None:
    clock = Clock()
    cache = ResponseCache(store, stale_while_revalidate=10, stale_if_error=300, clock=clock)
    await miss_then_fill(cache, Runs(b"old"))
    clock.now += 60 + 100
    failing = Runs(b'{"errors":[]}')
    failing.failed = True
    failing.storable = False

    served = await miss_then_fill(cache, failing)

    assert served.state is CacheState.STALE
    assert served.body == b"old"


async def test_no_cache_skips_the_read_but_writes(store: ResultCache) -> None:
    cache = ResponseCache(store)
    await miss_then_fill(cache, Runs(b"old"))

    lookup = await cache.lookup(KEY, scope=None, read=False)
    assert lookup.usable is None
    served = await cache.fill(
        KEY, lookup, policy=PUBLIC_POLICY, scope=None, produce=Runs(b"new"), share=False
    )

    assert served.state is CacheState.MISS
    found = (await cache.lookup(KEY, scope=None)).usable
    assert found is not None
    assert found.body == b"new"


async def test_invalidation_drops_the_entries_of_the_changed_tags(store: ResultCache) -> None:
    cache = ResponseCache(store)
    await miss_then_fill(cache, Runs(tags=["Review:list:product_id=1"]))

    await cache.invalidate(Changes(lists=frozenset({"Review:list:product_id=1"})))

    assert (await cache.lookup(KEY, scope=None)).usable is None


class DownStore(InMemoryCacheStore):
    async def get(self, keys: Sequence[str]) -> list[bytes | None]:
        raise CacheUnavailable("down")

    async def put(
        self, key: str, value: bytes, *, tags: Collection[str], ttl: float, since: Snapshot
    ) -> bool:
        raise CacheUnavailable("down")

    async def put_entities(
        self, values: Mapping[str, bytes], *, ttl: float, since: Snapshot
    ) -> None:
        raise CacheUnavailable("down")


async def test_an_unreachable_store_bypasses_the_cache() -> None:
    cache = ResponseCache(DownStore(max_bytes=1000))
    runs = Runs()

    lookup = await cache.lookup(KEY, scope=None)
    served = await cache.fill(KEY, lookup, policy=PUBLIC_POLICY, scope=None, produce=runs)

    assert lookup.bypass
    assert served.state is CacheState.BYPASS
    assert served.policy == PUBLIC_POLICY  # HTTP caches may still keep it


def test_headers_of_a_public_hit() -> None:
    clock = Clock()
    served = Served.cached(
        entry := _entry(b"body", stored_at=clock.now - 20, max_age=60, private=False)
    )

    headers = cache_headers(served, now=clock.now)

    assert headers == {
        "X-Cache": "HIT",
        "Cache-Control": "public, max-age=40",
        "ETag": entry.etag,
        "Age": "20",
    }


def test_headers_of_a_private_miss_and_of_what_is_not_cacheable() -> None:
    produced = Produced(b"body")
    miss = Served(b"body", CacheState.MISS, produced=produced, policy=PRIVATE_POLICY)

    assert cache_headers(miss, now=0) == {
        "X-Cache": "MISS",
        "Cache-Control": "private, max-age=60",
        "Vary": "Authorization",
        "ETag": etag_of(b"body"),
    }
    bypass = Served(b"body", CacheState.BYPASS, produced=produced)
    assert cache_headers(bypass, now=0) == {"X-Cache": "BYPASS", "Cache-Control": "no-store"}


def test_a_stale_answer_has_no_max_age_left() -> None:
    served = Served.cached(_entry(b"b", stored_at=0, max_age=60, private=False), CacheState.STALE)

    headers = cache_headers(served, now=75)

    assert headers["Cache-Control"] == "public, max-age=0"
    assert headers["Age"] == "75"


def test_if_none_match() -> None:
    etag = etag_of(b"body")

    assert not_modified(etag, etag)
    assert not_modified(f'"other", W/{etag}', etag)
    assert not_modified("*", etag)
    assert not not_modified('"other"', etag)
    assert not not_modified(None, etag)
    assert not not_modified(etag, None)


def _entry(body: bytes, *, stored_at: float, max_age: int, private: bool) -> CachedResponse:
    return CachedResponse(body, etag_of(body), max_age, private, stored_at)


def test_extensions_are_appended_to_stored_bytes_as_they_are() -> None:
    body = orjson.dumps({"data": {"x": [1, 2]}})

    sent = with_extensions(body, {"cost": {"actualQueryCost": 3}})

    assert orjson.loads(sent) == {
        "data": {"x": [1, 2]},
        "extensions": {"cost": {"actualQueryCost": 3}},
    }
    assert with_extensions(body, None) == body


def test_only_failures_of_the_database_may_be_covered_by_a_stale_answer() -> None:
    from graphql import ExecutionResult, GraphQLError
    from sqlalchemy.exc import OperationalError

    from resolvers.errors import Forbidden

    down = OperationalError("SELECT 1", {}, OSError("connection refused"))
    refused = Forbidden("no")

    assert failed_for_infrastructure(
        ExecutionResult(None, [GraphQLError("x", original_error=down)])
    )
    assert not failed_for_infrastructure(
        ExecutionResult(None, [GraphQLError("x", original_error=refused)])
    )
    assert not failed_for_infrastructure(ExecutionResult({"x": 1}))


def test_each_media_type_gets_its_own_tag_of_the_same_body() -> None:
    body_tag = etag_of(b"body")
    headers = {"X-Cache": "HIT", "ETag": body_tag}

    as_json = for_media_type(headers, "application/json")
    as_spec = for_media_type(headers, "application/graphql-response+json")

    assert as_json["ETag"] != as_spec["ETag"]
    assert as_json["ETag"] == for_media_type(headers, "Application/JSON")["ETag"]
    assert as_json["ETag"].startswith(body_tag[:-1] + "-")
    assert as_json["ETag"].endswith('"')
    assert as_json == {"X-Cache": "HIT", "ETag": as_json["ETag"], "Vary": "Accept"}
    assert not not_modified(as_json["ETag"], as_spec["ETag"])


def test_every_representation_varies_on_accept_in_one_header() -> None:
    json_type = "application/json"

    assert for_media_type({"Vary": "Authorization"}, json_type)["Vary"] == "Authorization, Accept"
    assert for_media_type({"Vary": "accept"}, json_type)["Vary"] == "accept"
    assert for_media_type({"X-Cache": "BYPASS"}, json_type) == {
        "X-Cache": "BYPASS",
        "Vary": "Accept",
    }


async def test_a_peek_is_what_a_lookup_serves_as_a_hit_when_memory_can_tell(
    store: ResultCache,
) -> None:
    clock = Clock()
    cache = ResponseCache(store, stale_while_revalidate=30, clock=clock)
    await miss_then_fill(cache, Runs(b"everyone's"))
    await miss_then_fill(
        cache, Runs(b"mine"), policy=PRIVATE_POLICY, scope="user:1:customer", key=OTHER
    )
    in_memory = isinstance(store, InMemoryCacheStore)

    def peeked(key: ResponseKey, scope: str | None) -> bytes | None:
        entry = cache.peek(key, scope=scope)
        return None if entry is None else entry.body

    # Redis alone cannot be read without I/O: a peek never answers there.
    assert peeked(KEY, None) == (b"everyone's" if in_memory else None)
    assert peeked(KEY, "user:2:customer") == (b"everyone's" if in_memory else None)
    assert peeked(OTHER, "user:1:customer") == (b"mine" if in_memory else None)
    assert peeked(OTHER, "user:2:customer") is None
    assert peeked(OTHER, None) is None

    clock.now += 61  # past max-age: stale, served by a lookup (and refreshed), never peeked
    assert (await cache.lookup(KEY, scope=None)).state is CacheState.STALE
    assert peeked(KEY, None) is None


OTHER = ResponseKey.of("b" * 64, None, "Mine")
