"""Budget leased from the shared buckets in chunks, so that most charges need no Redis call.

A process charges a client's cost out of a lease it holds: budget it has already
taken from the client's shared bucket (Redis). Only when the lease cannot pay,
or is older than `seconds`, does it ask the store again, in one call of the
store's script that gives back what the lease has left, then takes the cost
plus a spare of `share * maximum` (rounded down; less when the bucket holds
less). Refunds (a bill settled below its reservation) go back into the lease;
what would lift it above the spare goes straight to the store, as does a charge
beyond what it holds, so a lease always holds between 0 and the spare. While
one charge of a client is leasing, concurrent charges of that client that the
lease cannot pay reserve just their cost, so a burst takes one spare, not many.

The bound. Cost a lease holds is already out of the shared bucket, so nothing
is ever spent twice; but while a lease holds it, the bucket refills as if it had
been spent. So the cost a client can spend at any moment is at most the
bucket's maximum plus, per process holding a lease of that client, the spare;
over any interval of T seconds a client is admitted at most

    maximum + restore_rate * T + refunds + N * spare      (N processes)

where one exact bucket admits the same without `N * spare`: over-admission is at
most N * floor(share * maximum). The lease lifetime bounds how stale a lease's
view of the bucket (the `RateLimit-Remaining` it reports) can be, not the
over-admission. A lease dropped unrenewed (its client went quiet, or to other
processes) takes its spare with it: the bucket refills that in
`share * maximum / restore_rate` seconds. A policy whose spare is 0 (a bucket
under `1 / share`) is charged in the store on every call, exactly as without
leases.

Example:
    limiter = LeasedRateLimiter(RedisRateLimiter(redis), share=0.02, seconds=1.0)
    bucket = await limiter.reserve("user:42", 3, BucketPolicy(2000, 100))
    # first call: one script call takes 3 + 40; the next 13 calls of cost 3 take none
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from server.ratelimit.protocol import Bucket, BucketPolicy


class LeaseStore(Protocol):
    """A shared store of buckets that can lease (server/ratelimit/buckets.py)."""

    async def reserve(self, client: str, cost: float, policy: BucketPolicy) -> Bucket: ...

    async def settle(self, client: str, refund: float, policy: BucketPolicy) -> Bucket: ...

    async def lease(
        self, client: str, cost: float, policy: BucketPolicy, *, returned: float, spare: float
    ) -> tuple[Bucket, float]: ...


@dataclass(slots=True)
class _Lease:
    held: float  # taken from the store, not yet spent: 0..spare
    shared: float  # the store's bucket as the last lease left it
    leased_at: float


class LeasedRateLimiter:
    """A `RateLimiter` over `store` that charges out of per-client leases (see above)."""

    def __init__(
        self,
        store: LeaseStore,
        *,
        share: float,
        seconds: float,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = 100_000,
    ) -> None:
        self.store = store
        self.share = share
        self.seconds = seconds
        self._clock = clock
        self._max_clients = max_clients
        # In the order they were leased: the oldest first, to be dropped first.
        self._leases: dict[str, _Lease] = {}
        self._leasing: set[str] = set()  # clients with a lease call in flight

    def spare(self, policy: BucketPolicy) -> int:
        """What a lease of `policy`'s buckets holds at most: the over-admission per process."""
        return math.floor(policy.maximum * self.share)

    async def reserve(self, client: str, cost: float, policy: BucketPolicy) -> Bucket:
        spare = self.spare(policy)
        if spare == 0:
            return await self.store.reserve(client, cost, policy)
        amount = min(cost, policy.maximum)
        lease = self._leases.get(client)
        if amount == 0:  # a read (dry run, auth check): the store's bucket and this lease's
            bucket = await self.store.reserve(client, 0, policy)
            held = 0.0 if lease is None else lease.held
            return Bucket(True, min(policy.maximum, bucket.available + held), policy)
        now = self._clock()
        if lease is not None and lease.held >= amount and now - lease.leased_at < self.seconds:
            lease.held -= amount
            return Bucket(True, self._available(lease, policy, now), policy)
        return await self._lease(client, amount, policy, spare)

    async def settle(self, client: str, refund: float, policy: BucketPolicy) -> Bucket:
        spare = self.spare(policy)
        lease = self._leases.get(client)
        if spare == 0 or lease is None:
            return await self.store.settle(client, refund, policy)
        held = lease.held + refund
        lease.held = min(max(held, 0.0), spare)
        if held != lease.held:  # beyond the spare, or a charge beyond what it holds
            await self.store.settle(client, held - lease.held, policy)
        return Bucket(True, self._available(lease, policy, self._clock()), policy)

    async def _lease(self, client: str, amount: float, policy: BucketPolicy, spare: int) -> Bucket:
        if client in self._leasing:
            # Another charge of this client is leasing: reserve just the cost, as without
            # leases, rather than take a second spare (a burst must not drain the bucket).
            spare = 0
        self._leasing.add(client)
        lease = self._leases.pop(client, None)
        returned = 0.0 if lease is None else lease.held
        try:
            # On failure the returned budget is dropped (the store may have taken it).
            bucket, taken = await self.store.lease(
                client, amount, policy, returned=returned, spare=spare
            )
        finally:
            if spare:
                self._leasing.discard(client)
        now = self._clock()
        held = taken - amount if bucket.allowed else taken
        if spare:
            lease = _Lease(held, bucket.available, now)
            self._leases[client] = lease
            self._drop_old(now)
        return Bucket(bucket.allowed, min(policy.maximum, bucket.available + held), policy)

    def _available(self, lease: _Lease, policy: BucketPolicy, now: float) -> float:
        """The client's bucket as this process sees it: the store's, as the last lease
        left it and refilled since, plus what the lease still holds."""
        shared = lease.shared + max(0.0, now - lease.leased_at) * policy.restore_rate
        return min(policy.maximum, shared + lease.held)

    def _drop_old(self, now: float) -> None:
        """Forgets leases not renewed within their lifetime (their spare is left to
        the bucket's refill), and the oldest past `max_clients`."""
        while self._leases:
            oldest = next(iter(self._leases))
            expired = now - self._leases[oldest].leased_at >= self.seconds
            if not expired and len(self._leases) <= self._max_clients:
                return
            del self._leases[oldest]
