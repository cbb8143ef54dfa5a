"""The near cache alone: bounded in bytes (LRU), decoded once, expiring, dropped by key and type,
and refusing a fill that an invalidation crossed."""

from __future__ import annotations

from server.cache.near_cache import ABSENT, ENTRY_OVERHEAD, NearCache
from server.cache.protocol import ALL_TYPES


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class CountingDecoder:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, raw: bytes) -> str:
        self.calls += 1
        return raw.decode()


def _types(*names: str) -> frozenset[str]:
    return frozenset({*names, ALL_TYPES})


def test_entries_are_counted_in_bytes_and_the_least_recently_used_goes_first() -> None:
    entry_size = len("k0") + 1000 + ENTRY_OVERHEAD
    near = NearCache(max_bytes=3 * entry_size)
    decode = CountingDecoder()
    for i in range(3):
        assert near.put(f"k{i}", b"x" * 1000, types=_types("Product"), expires_at=1e9, epoch=0)
    assert near.size == 3 * entry_size
    near.get("k0", decode, now=0)  # k0 is now the most recently used

    near.put("k3", b"x" * 1000, types=_types("Product"), expires_at=1e9, epoch=0)

    assert near.size == 3 * entry_size <= near.max_bytes
    assert "k1" not in near
    assert {"k0", "k2", "k3"} <= {k for k in ("k0", "k1", "k2", "k3") if k in near}


def test_an_entry_larger_than_the_bound_is_not_kept() -> None:
    near = NearCache(max_bytes=500)

    assert not near.put("k", b"x" * 500, types=_types(), expires_at=1e9, epoch=0)
    assert len(near) == 0
    assert near.size == 0


def test_an_entry_is_decoded_once_then_served_as_the_same_object() -> None:
    near = NearCache(max_bytes=10_000)
    decode = CountingDecoder()
    near.put("k", b"payload", types=_types(), expires_at=1e9, epoch=0)

    first = near.get("k", decode, now=0)
    second = near.get("k", decode, now=0)

    assert first == "payload"
    assert second is first
    assert decode.calls == 1


class Payload:
    decoded = 0

    @classmethod
    def decode(cls, raw: bytes) -> bytes:
        cls.decoded += 1
        return raw


def test_a_classmethod_decoder_is_recognised_on_every_access() -> None:
    near = NearCache(max_bytes=10_000)
    near.put("k", b"payload", types=_types(), expires_at=1e9, epoch=0)

    results = [near.get("k", Payload.decode, now=0) for _ in range(3)]

    assert results == [b"payload"] * 3
    assert Payload.decoded == 1


def test_an_entry_expires_with_its_redis_key() -> None:
    clock = Clock()
    near = NearCache(max_bytes=10_000, clock=clock)
    near.put("k", b"v", types=_types(), expires_at=clock.now + 5, epoch=0)

    assert near.get("k", bytes, now=clock.now + 4.9) == b"v"
    assert near.get("k", bytes, now=clock.now + 5) is None
    assert len(near) == 0
    assert near.size == 0


def test_drops_by_key_by_type_and_all() -> None:
    near = NearCache(max_bytes=100_000)
    near.put("product", b"p", types=_types("Product"), expires_at=1e9, epoch=0)
    near.put("order", b"o", types=_types("Order", "Product"), expires_at=1e9, epoch=0)
    near.put("user", b"u", types=_types("User"), expires_at=1e9, epoch=0)
    near.put("other", b"x", types=_types("User"), expires_at=1e9, epoch=0)

    near.drop(["other", "unknown"])
    assert "other" not in near
    near.drop_types(["Product"])
    assert ("product" in near, "order" in near, "user" in near) == (False, False, True)
    near.drop_types([ALL_TYPES])
    assert len(near) == 0
    assert near.size == 0


def test_a_fill_crossed_by_a_drop_is_refused() -> None:
    near = NearCache(max_bytes=10_000)
    epoch = near.epoch  # a filler reads it, then asks Redis...
    near.drop(["some-other-key"])  # ...while an invalidation arrives

    assert not near.put("k", b"old", types=_types(), expires_at=1e9, epoch=epoch)
    assert not near.put_absent("k", expires_at=1e9, epoch=epoch)
    assert near.put("k", b"new", types=_types(), expires_at=1e9, epoch=near.epoch)


def test_a_key_known_absent_reads_as_absent_not_as_a_miss() -> None:
    near = NearCache(max_bytes=10_000)
    near.put_absent("k", expires_at=1e9, epoch=0)

    assert near.get("k", bytes, now=0) is ABSENT
    assert near.get("unknown", bytes, now=0) is None
