"""The saq queue of delivery jobs (Redis) and how a delivery's job is queued.

One job key per delivery (`delivery:<id>`): saq refuses a second job with a key
still queued or running, so the fan-out, a redelivery and the sweep may all
ask for a delivery's job and only one runs.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from typing import Any

from saq.queue.redis import RedisQueue

from server.settings import Settings

DELIVER = "deliver_webhook"
MAX_RETRY_DELAY_SECONDS = 6 * 3600.0
ENQUEUE_AT_ONCE = 50
SWEEP_SECONDS = 5
"""How often a worker looks for jobs of a dead worker (saq's sweep, and its lock)."""
SWEEP_ABORT_WAIT_SECONDS = 0.1
"""How long saq's sweep waits, per swept job, for a worker to confirm its abort."""


class WebhookQueue(RedisQueue):
    """saq's Redis queue, sweeping jobs of a dead worker every few seconds, not once a minute.

    saq's sweep waits for each swept job's abort to be confirmed, 5 s by default, one
    job after the other. A worker SIGKILLed with WEBHOOK_CONCURRENCY jobs running never
    confirms: 50 jobs held their deliveries for over four minutes. A job is swept only
    when its worker should have ended it already (past its timeout, or not running at
    all), and a second run of an attempt is not counted twice (the row's guard), so
    the wait is cut to a moment."""

    async def sweep(
        self, lock: int = SWEEP_SECONDS, abort: float = SWEEP_ABORT_WAIT_SECONDS
    ) -> list[str]:
        return await super().sweep(lock, abort)


def create_queue(settings: Settings) -> WebhookQueue:
    if settings.redis_url is None:
        raise ValueError("webhook deliveries need REDIS_URL (their job queue)")
    queue: Any = WebhookQueue.from_url(settings.redis_url, name=settings.webhook_queue)
    return queue  # type: ignore[no-any-return]


_LIVE = frozenset({"new", "queued", "active", "aborting"})


def job_timeout(settings: Settings) -> int:
    """saq's bound on a job: the attempt's own timeout plus the database writes around it."""
    return math.ceil(settings.webhook_timeout_seconds) + 5


async def enqueue_deliveries(
    queue: RedisQueue, settings: Settings, delivery_ids: Sequence[int], *, again: bool = False
) -> None:
    """Queues the job of each delivery; a round trip each, ENQUEUE_AT_ONCE in flight.

    `again` (the sweep's re-queue of stuck deliveries): only when no job of the
    delivery is waiting or running, under a key of its own (`delivery:N:again`),
    since saq drops a job whose key it still holds, and the job of a worker killed
    mid-attempt keeps its key for `ttl`. The attempt count on the row keeps a
    duplicate from being counted twice."""

    async def one(delivery_id: int) -> None:
        key = f"delivery:{delivery_id}"
        if again:
            # Only when no job of the delivery is still waiting or running (a job
            # queued behind a backlog is not stuck): then under a fresh key.
            keys = [key, f"{key}:again"]
            jobs = await queue.jobs(keys)
            if any(job is not None and job.status in _LIVE for job in jobs):
                return
            if jobs[1] is not None:  # a finished re-queue: saq would drop one more
                await queue.redis.delete(queue.job_id(keys[1]))
            await queue.enqueue(
                DELIVER,
                key=keys[1],
                delivery_id=delivery_id,
                timeout=job_timeout(settings),
                retries=settings.webhook_max_attempts + 2,
                ttl=600,
            )
            return
        await queue.enqueue(
            DELIVER,
            key=key,
            delivery_id=delivery_id,
            timeout=job_timeout(settings),
            # The delivery row decides when to stop; saq only needs room to retry.
            retries=settings.webhook_max_attempts + 2,
            ttl=600,
        )

    for start in range(0, len(delivery_ids), ENQUEUE_AT_ONCE):
        await asyncio.gather(*(one(i) for i in delivery_ids[start : start + ENQUEUE_AT_ONCE]))
