"""The replica set's choices, from what its checks found (no database: see
test_replicas_http.py for the real primary and replica)."""

from __future__ import annotations

from typing import Any

from server.replicas.read_after import ReadAfter, encode, parse_lsn
from server.replicas.replica_set import Replica, ReplicaSet


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def replica(name: str, **state: Any) -> Replica:
    found = {"up": True, "checked_at": 1000.0, "replay_lsn": 100} | state
    unused: Any = None  # no engine or session is opened here
    return Replica(name, engine=unused, sessionmaker=unused, probe=unused, **found)


def replica_set(*replicas: Replica, clock: Clock) -> ReplicaSet:
    unused: Any = None
    return ReplicaSet(list(replicas), primary=unused, max_lag=5, sticky=3, clock=clock, wall=clock)


def test_reads_take_usable_replicas_in_turn() -> None:
    clock = Clock()
    a, b = replica("a"), replica("b")
    replicas = replica_set(
        a, b, replica("down", up=False), replica("old", lagging=True), clock=clock
    )
    assert [replicas.reads(None).replica for _ in range(4)] == [a, b, a, b]
    assert not replicas.reads(None).pinned


def test_no_usable_replica_means_the_primary() -> None:
    clock = Clock()
    stale = replica("stale", checked_at=clock.now - 60)  # no check answered for a minute
    refused = replica("refused", refused=True)
    assert replica_set(stale, refused, clock=clock).reads(None).replica is None


def test_a_writer_reads_a_replica_only_once_it_replayed_the_write() -> None:
    clock = Clock()
    behind, ahead = replica("behind", replay_lsn=100), replica("ahead", replay_lsn=300)
    token = encode(ReadAfter(200, clock.now))
    reads = replica_set(behind, ahead, clock=clock).reads(token)
    assert reads.replica is ahead
    assert reads.pinned
    reads = replica_set(replica("behind", replay_lsn=199), clock=clock).reads(token)
    assert reads.replica is None
    assert reads.pinned


def test_a_write_without_position_reads_the_primary_for_the_sticky_seconds() -> None:
    clock = Clock()
    a = replica("a")
    replicas = replica_set(a, clock=clock)
    token = encode(ReadAfter(None, clock.now))
    assert replicas.reads(token).replica is None
    clock.now += 3.1  # past REPLICA_STICKY_SECONDS
    a.checked_at = clock.now
    reads = replicas.reads(token)
    assert reads.replica is a
    assert reads.pinned  # the caches are still skipped: the token lives on


def test_lag_is_how_long_ago_the_primary_passed_the_replayed_position() -> None:
    clock = Clock()
    replicas = replica_set(replica("a"), clock=clock)
    replicas._samples.extend([(990.0, 100), (994.0, 200), (998.0, 300)])
    assert replicas._lag(parse_lsn("0/12C"), 1000.0) == 0.0  # 300: nothing newer
    assert replicas._lag(250, 1000.0) == 2.0  # the primary was at 300 two seconds ago
    assert replicas._lag(150, 1000.0) == 6.0
    assert replicas._lag(50, 1000.0) == 10.0
