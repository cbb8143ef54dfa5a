"""Charging an operation's cost to its client's bucket, and telling the client so.

The requested cost is reserved before execution and `requested - actual` is given
back after it, so a client pays for what was resolved; the refund is sent once the
answer is out (a Starlette background task), which then reports the bucket as the
refund leaves it, so a shared store costs one round trip of latency, not two;
leased (server/ratelimit/leases.py), most reservations and refunds make none. The
answer carries
`extensions.cost` (GitHub's and Shopify's shape) and the `RateLimit-Limit`,
`RateLimit-Remaining` and `RateLimit-Reset` headers; a refusal carries
`Retry-After`. When the shared buckets cannot be reached (Redis down or hung,
their store's breaker open) the operation is charged to buckets kept in this
process instead, until the store answers again: rate limiting still holds, per
process, and an outage of Redis does not take the service down with it.

Example:
    bill = await throttle.reserve(client="user:42", viewer=viewer, requested=851)
    if bill.refused:
        ...  # 429 with bill.headers() and bill.cost()
    bill.settle(actual)
    response = Response(..., headers=bill.headers(), background=BackgroundTask(bill.refund))
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from resolvers.viewer import Viewer
from server.ratelimit.buckets import InMemoryRateLimiter
from server.ratelimit.protocol import Bucket, BucketPolicy, RateLimiter, RateLimiterUnavailable


@dataclass(slots=True)
class Bill:
    """One operation's charge: what it requested, and its client's bucket (None when
    rate limiting is off) in `limiter`, the store that holds it."""

    limiter: RateLimiter | None
    client: str
    requested: int
    policy: BucketPolicy
    bucket: Bucket | None
    reserved: int = 0
    actual: int = 0

    @property
    def refused(self) -> bool:
        return self.bucket is not None and not self.bucket.allowed

    @property
    def refund_amount(self) -> int:
        """What goes back: reserved but not used (negative: used beyond the reservation)."""
        if self.bucket is None or not self.bucket.allowed:
            return 0
        return self.reserved - self.actual

    def settle(self, actual: int) -> None:
        """Records what the operation really cost; the bill then shows the bucket as
        it will be once `refund` has run."""
        self.actual = actual
        if self.bucket is not None and self.refund_amount:
            available = min(self.policy.maximum, self.bucket.available + self.refund_amount)
            # The constructor, not `dataclasses.replace`: this runs on every answer.
            self.bucket = Bucket(self.bucket.allowed, max(0, available), self.bucket.policy)

    async def refund(self) -> None:
        """Sends the refund to the buckets' store (after the answer, as a background task)."""
        if self.refund_amount and self.limiter is not None:
            # Where it was reserved: a refund must not land in the other store.
            with contextlib.suppress(RateLimiterUnavailable):
                await self.limiter.settle(self.client, self.refund_amount, self.policy)

    def cost(self) -> dict[str, object]:
        """The `extensions.cost` of the answer."""
        cost: dict[str, object] = {
            "requestedQueryCost": self.requested,
            "actualQueryCost": self.actual,
        }
        if self.bucket is not None:
            cost["throttleStatus"] = {
                "maximumAvailable": self.policy.maximum,
                "currentlyAvailable": int(self.bucket.available),
                "restoreRate": self.policy.restore_rate,
            }
        return cost

    def headers(self) -> dict[str, str]:
        if self.bucket is None:
            return {}
        headers = {
            "RateLimit-Limit": str(self.policy.maximum),
            "RateLimit-Remaining": str(int(self.bucket.available)),
            "RateLimit-Reset": str(self.bucket.reset_after()),
        }
        if self.refused:
            headers["Retry-After"] = str(self.bucket.retry_after(self.requested))
        return headers

    def refusal(self) -> str:
        assert self.bucket is not None
        return (
            f"Rate limited: this query costs {self.requested} and "
            f"{int(self.bucket.available)} is available; retry in "
            f"{self.bucket.retry_after(self.requested)} s."
        )


class Throttle:
    """Reserves and settles operations' costs in `limiter` (None: rate limiting off),
    or in `fallback` (in process) while `limiter` cannot be reached."""

    def __init__(
        self,
        *,
        limiter: RateLimiter | None,
        policy: BucketPolicy,
        admin_policy: BucketPolicy,
        fallback: RateLimiter | None = None,
    ) -> None:
        self.limiter = limiter
        self.fallback = fallback or InMemoryRateLimiter()
        self.policy = policy
        self.admin_policy = admin_policy

    async def reserve(self, *, client: str, viewer: Viewer, requested: int) -> Bill:
        """The bill of an operation about to run; `refused` when its client cannot afford it."""
        return await self._open(client, viewer, requested, requested)

    async def peek(self, *, client: str, viewer: Viewer, requested: int) -> Bill:
        """A bill that reserves nothing: what a dry run reports."""
        return await self._open(client, viewer, requested, 0)

    async def _open(self, client: str, viewer: Viewer, requested: int, take: int) -> Bill:
        policy = self.admin_policy if viewer.is_admin else self.policy
        take = min(take, policy.maximum)  # as the store takes it
        limiter, bucket = self.limiter, None
        if limiter is not None:
            try:
                bucket = await limiter.reserve(client, take, policy)
            except RateLimiterUnavailable:  # logged by the limiter
                limiter = self.fallback
                bucket = await limiter.reserve(client, take, policy)
        return Bill(limiter, client, requested, policy, bucket, reserved=take)
