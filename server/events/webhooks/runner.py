"""The webhook side of `storefront worker`: the saq worker of delivery jobs (and its
sweep) running beside the outbox relay, and the relay's fan-out consumer.

Webhooks run when REDIS_URL (the job queue) and WEBHOOK_SECRET_KEY are set.
Without Redis they are off (the API refuses to create them). Without the key
they are off too, unless webhooks exist: then the worker stops with a one-line
error naming the setting, rather than leaving their deliveries unsent.

Example:
    async with webhook_jobs(settings, sessionmaker=sm) as consumers:
        relay = build_relay(..., consumers=consumers)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import Webhook
from server.events.webhooks.fanout import WebhookFanOut
from server.events.webhooks.jobs import create_worker
from server.events.webhooks.queue import create_queue
from server.events.webhooks.secret_box import SecretBox
from server.observability.metrics import Metrics
from server.settings import Settings

logger = logging.getLogger("storefront.webhooks")


@contextlib.asynccontextmanager
async def webhook_jobs(
    settings: Settings,
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    metrics: Metrics | None = None,
    run_jobs: bool = True,
) -> AsyncIterator[list[WebhookFanOut]]:
    """Runs the delivery worker while inside (unless not `run_jobs`); yields the relay's
    consumers (none when webhooks are off)."""
    if settings.redis_url is None:
        logger.info("webhooks: off (no REDIS_URL for their job queue)")
        yield []
        return
    if settings.webhook_secret_key is None:
        async with sessionmaker() as session:
            if await session.scalar(select(exists().where(Webhook.id.is_not(None)))):
                SecretBox.from_keys(None)  # raises: names WEBHOOK_SECRET_KEY
        logger.info("webhooks: off (no WEBHOOK_SECRET_KEY)")
        yield []
        return
    queue = create_queue(settings)
    await queue.connect()
    if not run_jobs:
        try:
            yield [WebhookFanOut(settings=settings, queue=queue)]
        finally:
            await queue.disconnect()
        return
    worker = create_worker(
        settings=settings, queue=queue, sessionmaker=sessionmaker, metrics=metrics
    )
    worker.SIGNALS = []  # the command's own handlers stop the relay, then this
    task = asyncio.create_task(worker.start())
    try:
        yield [WebhookFanOut(settings=settings, queue=queue)]
    finally:
        await worker.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await queue.disconnect()
