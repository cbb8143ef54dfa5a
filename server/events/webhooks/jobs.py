"""The saq worker of webhook deliveries: the delivery job and the scheduled sweep.

saq runs the jobs: concurrency (WEBHOOK_CONCURRENCY), a timeout per job, its
retries (the delay of each is the one this job computed with saq's
exponential backoff and full jitter, and wrote to the row as
`next_attempt_at`), and the cron sweep. It also re-runs a job whose worker
died mid-attempt (saq's sweep of stuck jobs, every few seconds here).

The sweep (WEBHOOK_SWEEP_CRON) re-queues PENDING deliveries left without a job
(the process died between the fan-out's commit and its enqueue, Redis was
down, saq gave up) and prunes published outbox rows past OUTBOX_RETENTION_DAYS.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any, cast

import httpx
from saq import CronJob, Worker
from saq.queue.redis import RedisQueue
from saq.types import PartialTimersDict
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import OutboxEvent, Webhook, WebhookDelivery, utcnow
from server.events.webhooks.delivery import DeliveryOptions, attempt
from server.events.webhooks.queue import (
    DELIVER,
    MAX_RETRY_DELAY_SECONDS,
    SWEEP_SECONDS,
    enqueue_deliveries,
)
from server.events.webhooks.secret_box import SecretBox
from server.events.webhooks.setup import url_policy
from server.observability.metrics import Metrics
from server.settings import Settings

logger = logging.getLogger("storefront.webhooks")

SWEEP_BATCH = 1000


class RetryLater(Exception):
    """The attempt failed and the row says to try again: saq retries the job."""


async def deliver_webhook(ctx: Any, *, delivery_id: int) -> str:
    outcome = await attempt(
        delivery_id,
        sessionmaker=ctx["sessionmaker"],
        box=ctx["box"],
        client=ctx["client"],
        options=ctx["options"],
    )
    metrics: Metrics | None = ctx.get("metrics")
    if metrics is not None and outcome.result != "skipped":
        metrics.child(metrics.webhook_deliveries, outcome.event_type, outcome.result).inc()
    if outcome.result == "retry":
        job = ctx["job"]
        # saq schedules the retry after exactly the delay the row now shows.
        job.retry_delay = outcome.retry_in
        job.retry_backoff = False
        raise RetryLater(f"delivery {delivery_id}: retry in {outcome.retry_in:.3f}s")
    return outcome.result


async def stuck_deliveries(
    sessionmaker: async_sessionmaker[AsyncSession], *, older_than: float
) -> list[int]:
    """PENDING deliveries of active webhooks this long past their next attempt."""
    cutoff = utcnow() - timedelta(seconds=older_than)
    async with sessionmaker() as session:
        found = await session.scalars(
            select(WebhookDelivery.id)
            .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
            .where(
                WebhookDelivery.status == "pending",
                WebhookDelivery.next_attempt_at < cutoff,
                Webhook.active.is_(True),
            )
            .order_by(WebhookDelivery.id)
            .limit(SWEEP_BATCH)
        )
        return list(found)


async def prune_outbox(sessionmaker: async_sessionmaker[AsyncSession], *, days: float) -> int:
    cutoff = utcnow() - timedelta(days=days)
    async with sessionmaker.begin() as session:
        pruned = await session.execute(delete(OutboxEvent).where(OutboxEvent.published_at < cutoff))
    return int(getattr(pruned, "rowcount", 0) or 0)


async def sweep(ctx: Any) -> dict[str, int]:
    settings: Settings = ctx["settings"]
    stuck = await stuck_deliveries(ctx["sessionmaker"], older_than=settings.webhook_stuck_seconds)
    await enqueue_deliveries(ctx["queue"], settings, stuck, again=True)
    pruned = await prune_outbox(ctx["sessionmaker"], days=settings.outbox_retention_days)
    if stuck or pruned:
        logger.info(
            "webhook sweep: %d deliveries re-queued, %d outbox rows pruned", len(stuck), pruned
        )
    return {"requeued": len(stuck), "pruned": pruned}


def create_worker(
    *,
    settings: Settings,
    queue: RedisQueue,
    sessionmaker: async_sessionmaker[AsyncSession],
    metrics: Metrics | None = None,
) -> Worker[Any]:
    """The saq worker of deliveries; `await worker.start()` runs it until stopped."""
    box = SecretBox.from_keys(settings.webhook_secret_key)
    options = DeliveryOptions(
        policy=url_policy(settings),
        retry_base_seconds=settings.webhook_retry_base_seconds,
        max_retry_seconds=MAX_RETRY_DELAY_SECONDS,
        timeout_seconds=settings.webhook_timeout_seconds,
    )

    async def startup(ctx: Any) -> None:
        ctx.update(
            settings=settings,
            queue=queue,
            sessionmaker=sessionmaker,
            box=box,
            options=options,
            metrics=metrics,
            # Redirects are not followed: a 3xx is a failed attempt, never a hop
            # to an address the SSRF guard did not check.
            client=httpx.AsyncClient(follow_redirects=False, trust_env=False),
        )

    async def shutdown(ctx: Any) -> None:
        client = ctx.get("client")
        if client is not None:
            await client.aclose()

    timers = cast("PartialTimersDict", {"sweep": SWEEP_SECONDS, "schedule": 1})
    worker: Worker[Any] = Worker(
        queue,
        functions=[(DELIVER, deliver_webhook)],
        concurrency=settings.webhook_concurrency,
        cron_jobs=[CronJob(sweep, cron=settings.webhook_sweep_cron, timeout=60)],
        startup=startup,
        shutdown=shutdown,
        timers=timers,
    )
    return worker
