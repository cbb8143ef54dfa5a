"""Leaky buckets of query cost: in process (one process only) and in Redis (shared).

Both keep per client the cost `available` and the time it was computed at;
reading a bucket first refills it by `restore_rate` per elapsed second, up to
the maximum. Redis does that in one Lua script, so concurrent workers and
instances cannot both spend the same cost, and it uses the Redis server's
clock, so instances with skewed clocks agree. Every key expires once its bucket
would be full again: a key that is gone is a full bucket. The same script leases
(server/ratelimit/leases.py): in one call it takes back what a process's lease
left unspent and takes a cost plus a spare. Each Redis call goes
through a `RedisGuard` (server/redis_guard.py): bounded by `timeout`, and
refused at once while its breaker is open; either way RateLimiterUnavailable,
and the throttle charges in-process buckets instead.

Example:
    limiter = RedisRateLimiter(bounded_client(url, timeout=0.05), timeout=0.05)
    # or InMemoryRateLimiter()
    bucket = await limiter.reserve("ip:203.0.113.7", 120, BucketPolicy(2000, 100))
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from redis.asyncio import Redis

from server.ratelimit.protocol import Bucket, BucketPolicy, RateLimiterUnavailable
from server.redis_guard import RedisGuard

logger = logging.getLogger("storefront.rate_limit")

KEY_PREFIX = "sf:v1:ratelimit:"

# KEYS[1]: the bucket. ARGV: maximum, restore rate per second, amount, mode, returned, spare.
# mode "reserve": first give back `returned` (what a process's lease did not spend,
# server/ratelimit/leases.py), then take `amount` plus up to `spare` more if `amount`
# is available, else nothing; mode "settle": add `amount` back (negative takes more).
# Either way the bucket stays within 0..maximum. Returns {allowed, available, taken};
# numbers as strings, as Lua numbers would be truncated to integers on the way out.
_SCRIPT = """
local maximum = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local amount = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'available', 'at')
local available = tonumber(state[1])
if available == nil then
  available = maximum
else
  available = math.min(maximum, available + math.max(0, now - tonumber(state[2])) * rate)
end
local allowed = 1
local taken = 0
if ARGV[4] == 'reserve' then
  available = math.max(0, math.min(maximum, available + tonumber(ARGV[5])))
  if amount <= available then
    taken = math.min(available, amount + tonumber(ARGV[6]))
    available = available - taken
  else
    allowed = 0
  end
else
  available = math.max(0, math.min(maximum, available + amount))
end
redis.call('HSET', KEYS[1], 'available', tostring(available), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil((maximum - available) / rate) + 1)
return {allowed, tostring(available), tostring(taken)}
"""


class RedisRateLimiter:
    """Buckets in Redis under `sf:v1:ratelimit:<client>`, shared by every process."""

    def __init__(
        self,
        redis: Redis,
        *,
        timeout: float = 0.05,
        retry_after: float = 1.0,
        prefix: str = KEY_PREFIX,
    ) -> None:
        self.prefix = prefix
        self._script = redis.register_script(_SCRIPT)
        self.guard = RedisGuard(
            "rate limiting",
            timeout=timeout,
            retry_after=retry_after,
            error=RateLimiterUnavailable,
            logger=logger,
            fallback="charging buckets kept in this process until it answers",
        )

    async def reserve(self, client: str, cost: float, policy: BucketPolicy) -> Bucket:
        return (await self.lease(client, cost, policy, returned=0, spare=0))[0]

    async def lease(
        self, client: str, cost: float, policy: BucketPolicy, *, returned: float, spare: float
    ) -> tuple[Bucket, float]:
        """Gives back `returned`, then reserves `cost` and up to `spare` more at once:
        the bucket and what was taken (0 when refused)."""
        amount = min(cost, policy.maximum)
        allowed, available, taken = await self._call(
            client, amount, policy, "reserve", returned, spare
        )
        return Bucket(allowed, available, policy), taken

    async def settle(self, client: str, refund: float, policy: BucketPolicy) -> Bucket:
        allowed, available, _ = await self._call(client, refund, policy, "settle", 0, 0)
        return Bucket(allowed, available, policy)

    async def _call(
        self,
        client: str,
        amount: float,
        policy: BucketPolicy,
        mode: str,
        returned: float,
        spare: float,
    ) -> tuple[bool, float, float]:
        async with self.guard.bounded():
            allowed, available, taken = await self._script(
                keys=[self.prefix + client],
                args=[policy.maximum, policy.restore_rate, amount, mode, returned, spare],
            )
        return bool(allowed), float(available), float(taken)


class InMemoryRateLimiter:
    """Buckets in this process's memory: right for one process, wrong for several.

    Past `max_clients` buckets, the full ones are forgotten (as Redis expires
    them), then the least recently used.
    """

    def __init__(
        self, *, clock: Callable[[], float] = time.monotonic, max_clients: int = 100_000
    ) -> None:
        self._clock = clock
        self._max_clients = max_clients
        # client -> (available, computed at, full again at)
        self._buckets: dict[str, tuple[float, float, float]] = {}

    async def reserve(self, client: str, cost: float, policy: BucketPolicy) -> Bucket:
        return (await self.lease(client, cost, policy, returned=0, spare=0))[0]

    async def lease(
        self, client: str, cost: float, policy: BucketPolicy, *, returned: float, spare: float
    ) -> tuple[Bucket, float]:
        """As `RedisRateLimiter.lease`."""
        now, available = self._refilled(client, policy)
        available = max(0.0, min(policy.maximum, available + returned))
        amount = min(cost, policy.maximum)
        allowed, taken = amount <= available, 0.0
        if allowed:
            taken = min(available, amount + spare)
            available -= taken
        self._store(client, available, now, policy)
        return Bucket(allowed, available, policy), taken

    async def settle(self, client: str, refund: float, policy: BucketPolicy) -> Bucket:
        now, available = self._refilled(client, policy)
        available = max(0.0, min(policy.maximum, available + refund))
        self._store(client, available, now, policy)
        return Bucket(True, available, policy)

    def _refilled(self, client: str, policy: BucketPolicy) -> tuple[float, float]:
        now = self._clock()
        state = self._buckets.pop(client, None)
        if state is None:
            return now, float(policy.maximum)
        available, at, _ = state
        return now, min(policy.maximum, available + max(0.0, now - at) * policy.restore_rate)

    def _store(self, client: str, available: float, now: float, policy: BucketPolicy) -> None:
        full_at = now + (policy.maximum - available) / policy.restore_rate
        self._buckets[client] = (available, now, full_at)
        if len(self._buckets) > self._max_clients:
            for key in [k for k, (_, _, full) in self._buckets.items() if full <= now]:
                del self._buckets[key]
            while len(self._buckets) > self._max_clients:
                del self._buckets[next(iter(self._buckets))]
