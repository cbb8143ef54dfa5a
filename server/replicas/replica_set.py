"""The replica set: where a query's loader reads go, and what is known of each replica.

Every CHECK_INTERVAL a background task reads the primary's WAL position (one
sample) and each replica's `pg_is_in_recovery()` and `pg_last_wal_replay_lsn()`
over a connection of its own. A replica's lag is how long ago the primary was
first at a position the replica has not replayed yet (from the samples: no
clocks compared between servers). A read goes, in turn, to a replica that
answered its last check, is a standby, and lags no more than
REPLICA_MAX_LAG_SECONDS; otherwise to the primary.

A client that wrote carries a read-after token (server/replicas/read_after.py).
While it is young the client's reads skip the caches, and they go to a replica
only once its replay position (cached, read again on demand at most every
POSITION_TTL) is past the token's LSN; a token without an LSN reads the primary
for REPLICA_STICKY_SECONDS.

A replica that fails a read is marked down at once (checked again in the
background) and the operation runs again on the primary: no failed request.

The caches: a write invalidates its answers when it commits; a read of a replica
that had not replayed the write yet may then store an old answer again. So the
write's tags are invalidated a second time once every replica has replayed past
it, or REPLICA_MAX_LAG_SECONDS (plus two checks) after it at the latest: by
then a replica still behind it is skipped as lagging.

Example:
    replicas = ReplicaSet([replica], primary=sessionmaker, max_lag=5, sticky=5)
    await replicas.start()
    reads = replicas.reads(request.read_after)   # reads.replica None: the primary
    headers = await replicas.written()           # after a mutation: the token
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field

from graphql import ExecutionResult
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from loaders.batch import SessionMaker, read_connection
from resolvers.changes import Changes
from schema.errors import is_database_unavailable
from server.replicas.read_after import ReadAfter, decode, encode, parse_lsn, response_headers

logger = logging.getLogger("storefront.replicas")

CHECK_INTERVAL = 0.25
"""Seconds between two background checks of the primary's position and each replica."""
CHECK_TIMEOUT = 1.0
"""Longest wait for one check; slower, the replica counts as down."""
POSITION_TTL = 0.005
"""A replica's replay position is read again on demand (a token ahead of it) at most this often."""
_STALE_AFTER = 4 * CHECK_INTERVAL + CHECK_TIMEOUT  # no check this recent: health unknown
_SAMPLES_KEPT = 5.0  # seconds of primary positions kept past REPLICA_MAX_LAG_SECONDS
_RECOVERY_CONFLICT = "40001"  # a standby cancelled the statement to replay WAL

_POSITION = text("SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text")
_PRIMARY_POSITION = text("SELECT pg_current_wal_lsn()::text")

Invalidate = Callable[[Collection[str]], Awaitable[None]]


@dataclass(eq=False, slots=True)
class Replica:
    """One standby: the engine reads use, a one-connection engine for its checks, and
    what the last check found."""

    name: str
    engine: AsyncEngine
    sessionmaker: SessionMaker
    probe: AsyncEngine
    up: bool = False
    refused: bool = False
    lagging: bool = False
    replay_lsn: int = 0
    lag: float = 0.0
    checked_at: float = -math.inf
    refreshing: asyncio.Task[None] | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Reads:
    """Where one operation reads: `replica`, or the primary when None. `pinned`: the
    client wrote recently, so no cached answer or entity may be used."""

    replica: Replica | None
    pinned: bool


class ReplicaSet:
    """The replicas of DATABASE_REPLICA_URLS and the rules above (module docstring)."""

    def __init__(
        self,
        replicas: list[Replica],
        *,
        primary: SessionMaker,
        max_lag: float,
        sticky: float,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.replicas = replicas
        self.primary = primary
        self.max_lag = max_lag
        self.sticky = sticky
        self.clock = clock
        self.wall = wall
        # A token must outlive the second invalidation of its write's answers.
        self.lifetime = max(sticky, max_lag + 2 * CHECK_INTERVAL + 1.0)
        self.invalidate: Invalidate | None = None
        self._samples: deque[tuple[float, int]] = deque()
        self._pending: set[str] = set()
        self._waiting: deque[tuple[int | None, float, set[str]]] = deque()
        self._next = 0
        self._task: asyncio.Task[None] | None = None
        self._primary_answered = True

    async def start(self) -> None:
        """Checks every replica once (refusing a primary), then keeps checking."""
        await self._sample()
        await asyncio.gather(*(self.check(replica) for replica in self.replicas))
        for replica in self.replicas:
            if not replica.up and not replica.refused:
                logger.warning(
                    "replica %s does not answer: reads go to the primary until it does",
                    replica.name,
                )
        self._task = asyncio.create_task(self._watch())

    async def close(self) -> None:
        tasks = [self._task] if self._task is not None else []
        tasks += [r.refreshing for r in self.replicas if r.refreshing is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for replica in self.replicas:
            await replica.engine.dispose()
            await replica.probe.dispose()

    def reads(self, token: str | None) -> Reads:
        """Where an operation of a client carrying `token` (raw, or None) reads."""
        after = self._decode(token)
        pinned = after is not None
        if after is not None and after.lsn is None and self.wall() - after.written_at < self.sticky:
            return Reads(None, pinned)
        now = self.clock()
        count = len(self.replicas)
        for step in range(count):
            replica = self.replicas[(self._next + step) % count]
            if not self._usable(replica, now):
                continue
            if after is not None and after.lsn is not None and replica.replay_lsn < after.lsn:
                self._refresh(replica, now)
                continue
            self._next = (self._next + step + 1) % count
            return Reads(replica, pinned)
        return Reads(None, pinned)

    def pins(self, token: str | None) -> bool:
        """Whether `token` is a recent write's: the client's reads skip the caches."""
        return self._decode(token) is not None

    def failed(self, replica: Replica, result: ExecutionResult) -> bool:
        """Whether `result`, read on `replica`, failed for the replica's sake (down,
        or a read cancelled by replay): then the replica is marked down until checked
        again, and the operation is to run again on the primary."""
        errors = [error.original_error for error in result.errors or ()]
        if not any(is_database_unavailable(e) or _recovery_conflict(e) for e in errors):
            return False
        if replica.up:
            logger.warning("replica %s failed a read: reading the primary", replica.name)
        replica.up = False
        self._refresh(replica, self.clock(), at_once=True)
        return True

    async def written(self) -> dict[str, str]:
        """The answer headers of a committed write: its read-after token (the primary's
        WAL position now, or none when it cannot be read)."""
        position = await self._primary_position()
        token = encode(ReadAfter(position, self.wall()))
        return response_headers(token, lifetime=self.lifetime)

    async def changed(self, changes: Changes) -> None:
        """A ChangeFeed subscriber: the tags to invalidate again once replicas replayed them."""
        self._pending.update(changes.tags)

    async def check(self, replica: Replica) -> None:
        """Reads `replica`'s state; a replica that is not in recovery is refused for good."""
        started = self.clock()
        try:
            async with asyncio.timeout(CHECK_TIMEOUT), replica.probe.connect() as connection:
                in_recovery, replay = (await connection.execute(_POSITION)).one()
        except Exception as error:
            if replica.up:
                logger.warning("replica %s is down (%s): reading the primary", replica.name, error)
            replica.up = False
            return
        if not in_recovery:
            replica.up, replica.refused = False, True
            logger.warning(
                "replica %s is refused (DATABASE_REPLICA_URLS): it is a primary"
                " (pg_is_in_recovery() is false); its reads go to the primary",
                replica.name,
            )
            return
        replica.replay_lsn = parse_lsn(replay) if replay else 0
        replica.lag = self._lag(replica.replay_lsn, started)
        replica.checked_at = started
        if not replica.up:
            logger.info("replica %s is up (lag %.3f s)", replica.name, replica.lag)
        replica.up = True
        lagging = replica.lag > self.max_lag
        if lagging != replica.lagging:
            logger.warning(
                "replica %s lags %.1f s%s",
                replica.name,
                replica.lag,
                f" (more than REPLICA_MAX_LAG_SECONDS={self.max_lag:g}): skipped"
                if lagging
                else ": back in use",
            )
        replica.lagging = lagging

    def _decode(self, token: str | None) -> ReadAfter | None:
        return None if not token else decode(token, now=self.wall(), lifetime=self.lifetime)

    def _usable(self, replica: Replica, now: float) -> bool:
        return (
            replica.up
            and not replica.refused
            and not replica.lagging
            and now - replica.checked_at <= _STALE_AFTER
        )

    def _lag(self, replay_lsn: int, now: float) -> float:
        """How long ago the primary first was past `replay_lsn` (0: it never was)."""
        for at, position in self._samples:
            if position > replay_lsn:
                return max(0.0, now - at)
        return 0.0

    def _refresh(self, replica: Replica, now: float, *, at_once: bool = False) -> None:
        """Checks `replica` again in the background, once at a time, at most every
        POSITION_TTL (unless `at_once`)."""
        if replica.refreshing is not None or replica.refused:
            return
        if not at_once and now - replica.checked_at < POSITION_TTL:
            return
        task = asyncio.create_task(self.check(replica))
        replica.refreshing = task

        def done(_: asyncio.Task[None]) -> None:
            replica.refreshing = None

        task.add_done_callback(done)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(CHECK_INTERVAL)
            try:
                await self._tick()
            except Exception:
                logger.exception("replica check failed")

    async def _tick(self) -> None:
        pending, self._pending = self._pending, set()
        position = await self._sample()  # after the pending writes committed
        if pending:
            deadline = self.clock() + self.max_lag + 2 * CHECK_INTERVAL
            self._waiting.append((position, deadline, pending))
        await asyncio.gather(*(self.check(r) for r in self.replicas if not r.refused))
        await self._invalidate_replayed()

    async def _sample(self) -> int | None:
        position = await self._primary_position()
        now = self.clock()
        if position is not None:
            self._samples.append((now, position))
        while self._samples and self._samples[0][0] < now - self.max_lag - _SAMPLES_KEPT:
            self._samples.popleft()
        return position

    async def _invalidate_replayed(self) -> None:
        """The second invalidation of the writes every replica has replayed (or whose
        deadline passed: a replica behind them now lags too much to be read)."""
        now = self.clock()
        while self._waiting:
            position, deadline, tags = self._waiting[0]
            replayed = position is not None and all(
                r.refused or (r.up and r.replay_lsn >= position) for r in self.replicas
            )
            if not replayed and now < deadline:
                return
            self._waiting.popleft()
            if self.invalidate is not None:
                try:
                    await self.invalidate(tags)
                except Exception:
                    logger.exception("second invalidation failed for %s", sorted(tags))

    async def _primary_position(self) -> int | None:
        try:
            async with asyncio.timeout(CHECK_TIMEOUT), read_connection(self.primary) as connection:
                value = (await connection.execute(_PRIMARY_POSITION)).scalar_one()
        except Exception as error:
            if self._primary_answered:  # once per outage, not every check
                logger.warning("cannot read the primary's WAL position: %s", error)
            self._primary_answered = False
            return None
        self._primary_answered = True
        return parse_lsn(value)


def _recovery_conflict(error: BaseException | None) -> bool:
    return isinstance(error, DBAPIError) and (
        getattr(error.orig, "sqlstate", None) == _RECOVERY_CONFLICT
    )
