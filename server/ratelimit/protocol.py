"""The seam between cost-based rate limiting and where the buckets are kept.

Each client has a leaky bucket of query cost: it holds at most `maximum`, a
query's cost is taken out before it runs, and the bucket refills at
`restore_rate` per second. `server/ratelimit/buckets.py` implements the Protocol in
process and in Redis (one Lua script, so every worker and instance drains the
same bucket).

Example:
    bucket = await limiter.reserve("user:42", 851, policy)
    if not bucket.allowed:
        ...  # 429, Retry-After: bucket.retry_after(851)
    bucket = await limiter.settle("user:42", 851 - actual, policy)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class BucketPolicy:
    """How much cost a client may spend at once, and how fast it comes back."""

    maximum: int
    restore_rate: float  # cost per second; > 0

    def __post_init__(self) -> None:
        if self.maximum <= 0 or self.restore_rate <= 0:
            raise ValueError("a bucket needs a positive maximum and restore rate")


@dataclass(frozen=True, slots=True)
class Bucket:
    """A client's bucket after a reservation or a settlement."""

    allowed: bool
    available: float
    policy: BucketPolicy

    def retry_after(self, cost: float) -> int:
        """Whole seconds until `cost` is available (at least 1 when it is not now)."""
        missing = min(cost, self.policy.maximum) - self.available
        return 0 if missing <= 0 else max(1, math.ceil(missing / self.policy.restore_rate))

    def reset_after(self) -> int:
        """Whole seconds until the bucket is full again."""
        missing = self.policy.maximum - self.available
        return 0 if missing <= 0 else math.ceil(missing / self.policy.restore_rate)


class RateLimiterUnavailable(Exception):
    """The buckets cannot be reached (e.g. Redis is down, or slower than its bound).

    The implementation has logged the outage; callers charge a fallback instead
    (server/ratelimit/throttle.py keeps buckets in process until the store answers again).
    """


class RateLimiter(Protocol):
    """Keeps one leaky bucket per client key (e.g. `user:42`, `ip:203.0.113.7`).

    Both methods refill the bucket for the time elapsed first, and are atomic.
    """

    async def reserve(self, client: str, cost: float, policy: BucketPolicy) -> Bucket:
        """Takes `cost` out when that much is available (`allowed`); else takes nothing.

        A cost above `policy.maximum` is taken as the maximum: a full bucket always
        admits one query. A cost of 0 reads the bucket without changing it.
        """
        ...

    async def settle(self, client: str, refund: float, policy: BucketPolicy) -> Bucket:
        """Gives back `refund` (negative: takes more), keeping the bucket in 0..maximum."""
        ...
