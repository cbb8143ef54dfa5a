"""Failed authentications, rate-limited per client address.

Every failure (a 401) takes one from its address's bucket; a token that has
to be checked (not a viewer the auth cache holds) is first held to the bucket,
and once it is empty the address gets 429 with `Retry-After` before anything is
looked up. Guessing tokens, or flooding the database with lookups of random
ones, is then bounded per address, while successes cost nothing, however many
arrive at once. The buckets are the cost buckets' store (Redis or in process)
under keys of their own.

Example:
    throttle = AuthFailureThrottle(limiter=limiter, policy=BucketPolicy(20, 0.5))
    await throttle.check("ip:203.0.113.7")    # AuthThrottled when it is empty
    try:
        viewer = await authenticate(...)
    except Unauthenticated:
        await throttle.failed("ip:203.0.113.7")
        raise
"""

from __future__ import annotations

from server.ratelimit.buckets import InMemoryRateLimiter
from server.ratelimit.protocol import Bucket, BucketPolicy, RateLimiter, RateLimiterUnavailable

KEY_PREFIX = "authfail:"


class AuthThrottled(Exception):
    """Too many failed authentications from this address: answer 429."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"Too many failed authentications from this address; retry in {retry_after} s."
        )
        self.message = str(self)
        self.retry_after = retry_after


class AuthFailureThrottle:
    """Buckets of failed authentications in `limiter` (None: not limited)."""

    def __init__(
        self,
        *,
        limiter: RateLimiter | None,
        policy: BucketPolicy,
        fallback: RateLimiter | None = None,
    ) -> None:
        self.limiter = limiter
        self.fallback = fallback or InMemoryRateLimiter()
        self.policy = policy

    async def check(self, address: str) -> None:
        """AuthThrottled when `address` has no failure left to spend."""
        if self.limiter is None:
            return
        bucket = await self._reserve(address, 0)
        if bucket.available < 1:
            raise AuthThrottled(bucket.retry_after(1))

    async def failed(self, address: str) -> None:
        """Counts a failed authentication of `address`."""
        if self.limiter is None:
            return
        await self._reserve(address, 1)

    async def _reserve(self, address: str, amount: int) -> Bucket:
        assert self.limiter is not None
        try:
            return await self.limiter.reserve(KEY_PREFIX + address, amount, self.policy)
        except RateLimiterUnavailable:  # logged by the limiter: count in process meanwhile
            return await self.fallback.reserve(KEY_PREFIX + address, amount, self.policy)
