"""Failed authentications, rate-limited per client address.

Every token that has to be checked (not a viewer the auth cache holds) takes
one from its address's bucket first, and a success gives it back; so only
failures (401s) drain it, and once it is empty the address gets 429 with
`Retry-After` before anything is looked up. Guessing tokens, or flooding the
database with lookups of random ones, is then bounded per address. The buckets
are the cost buckets' store (Redis or in process) under keys of their own.

Example:
    throttle = AuthFailureThrottle(limiter=limiter, policy=BucketPolicy(20, 0.5))
    await throttle.attempt("ip:203.0.113.7")     # AuthThrottled when it is empty
    viewer = await authenticate(...)              # Unauthenticated: the 1 stays taken
    await throttle.succeeded("ip:203.0.113.7")
"""

from __future__ import annotations

import logging

from schema.rate_limit import BucketPolicy, RateLimiter, RateLimiterUnavailable

logger = logging.getLogger("storefront.auth")

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

    def __init__(self, *, limiter: RateLimiter | None, policy: BucketPolicy) -> None:
        self.limiter = limiter
        self.policy = policy

    async def attempt(self, address: str) -> None:
        """Takes one attempt from `address`'s bucket; AuthThrottled when none is left."""
        if self.limiter is None:
            return
        try:
            bucket = await self.limiter.reserve(KEY_PREFIX + address, 1, self.policy)
        except RateLimiterUnavailable:
            return  # the cost throttle logs the outage
        if not bucket.allowed:
            raise AuthThrottled(bucket.retry_after(1))

    async def succeeded(self, address: str) -> None:
        """Gives back the attempt of an authentication that succeeded."""
        if self.limiter is None:
            return
        try:
            await self.limiter.settle(KEY_PREFIX + address, 1, self.policy)
        except RateLimiterUnavailable:
            return
