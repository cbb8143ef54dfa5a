"""Budget leased from the shared buckets in chunks, so that most charges need no Redis call.

A process charges a client's cost out of a lease it holds: budget it has already
taken from the client's shared bucket (Redis). Only when the lease cannot pay,
or is older than `seconds`, does it ask the store again, in one call of the
store's script that gives back what the lease has left, then takes the cost
plus a spare of `share * maximum` (rounded down; less when the bucket holds
less). Refunds (a bill settled below its reservation) go back into the lease;
what would lift it above the spare goes straight to the store, as does a charge
beyond what it holds, so a lease always holds between 0 and the spare. One
renewal per client is in flight at a time: concurrent charges of that client wait
for it and pay out of what it took, and only those it cannot pay reserve just
their cost, so a burst takes one spare, not many; refunds arriving meanwhile stay
in the lease. (Before, every charge and refund during a renewal went to the store
itself: under 16 connections on two workers, hundreds of script calls a second
at each renewal, and stalls of up to 2 s measured in `make bench`.)

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

import asyncio
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
        self._renewals: dict[str, asyncio.Future[None]] = {}  # lease calls in flight

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
        paid = self._paid(client, amount, policy)
        if paid is not None:
            return paid
        renewal = self._renewals.get(client)
        if renewal is None:
            return await self._lease(client, amount, policy, spare)
        # One renewal per client at a time: wait for it, then pay out of what it took;
        # only what it cannot pay reserves just its cost (a burst takes one spare).
        await asyncio.shield(renewal)
        paid = self._paid(client, amount, policy)
        if paid is not None:
            return paid
        return await self._lease(client, amount, policy, 0)

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

    def _paid(self, client: str, amount: float, policy: BucketPolicy) -> Bucket | None:
        """The bucket after `amount` is taken out of the client's lease; None when the
        lease cannot pay it (none, too little, or too old)."""
        lease = self._leases.get(client)
        now = self._clock()
        if lease is None or lease.held < amount or now - lease.leased_at >= self.seconds:
            return None
        lease.held -= amount
        return Bucket(True, self._available(lease, policy, now), policy)

    async def _lease(self, client: str, amount: float, policy: BucketPolicy, spare: int) -> Bucket:
        """Takes `amount` (and `spare` more, when given) from the store, giving back what
        the lease holds. A renewal keeps the lease in place, emptied: refunds arriving
        meanwhile stay in it (rather than each going to the store) and are added to
        what the renewal takes."""
        lease = self._leases.get(client) if spare else None
        returned = 0.0
        if lease is not None:
            returned, lease.held = lease.held, 0.0
        renewal: asyncio.Future[None] | None = None
        if spare:
            renewal = asyncio.get_running_loop().create_future()
            self._renewals[client] = renewal
        try:
            # On failure the returned budget is dropped (the store may have taken it).
            bucket, taken = await self.store.lease(
                client, amount, policy, returned=returned, spare=spare
            )
        except BaseException:
            if lease is not None and self._leases.get(client) is lease:
                del self._leases[client]
            raise
        finally:
            if renewal is not None:
                del self._renewals[client]
                renewal.set_result(None)
        now = self._clock()
        held = taken - amount if bucket.allowed else taken
        if spare:
            refunded = 0.0 if lease is None else lease.held  # arrived while renewing
            kept = min(held + refunded, spare)
            self._leases.pop(client, None)
            self._leases[client] = _Lease(kept, bucket.available, now)  # the newest: last
            self._drop_old(now)
            if held + refunded > kept:
                await self.store.settle(client, held + refunded - kept, policy)
            held = kept
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
