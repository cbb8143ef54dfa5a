"""`WebhookSetup` of an API process: URL policy, secret box and job queue from settings."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from saq.queue.redis import RedisQueue

from resolvers.webhook_urls import UrlPolicy
from server.events.webhooks.queue import create_queue, enqueue_deliveries
from server.events.webhooks.secret_box import SecretBox
from server.settings import Settings

logger = logging.getLogger("storefront.webhooks")


def url_policy(settings: Settings) -> UrlPolicy:
    return UrlPolicy(
        allow_http=settings.webhook_allow_http, allow_private=settings.webhook_allow_private
    )


@dataclass(frozen=True, slots=True)
class QueuedWebhookSetup:
    """resolvers.webhooks.WebhookSetup over a saq queue."""

    settings: Settings
    box: SecretBox
    queue: RedisQueue

    @property
    def policy(self) -> UrlPolicy:
        return url_policy(self.settings)

    @property
    def max_attempts(self) -> int:
        return self.settings.webhook_max_attempts

    def seal(self, secret: str) -> str:
        return self.box.seal(secret)

    async def enqueue(self, delivery_ids: Sequence[int]) -> None:
        try:
            await enqueue_deliveries(self.queue, self.settings, delivery_ids)
        except Exception:  # the row is PENDING: the worker's sweep queues it again
            logger.warning("could not queue webhook deliveries %s", delivery_ids, exc_info=True)


async def open_webhook_setup(settings: Settings) -> QueuedWebhookSetup | None:
    """The setup of an API process, its queue connected; None without WEBHOOK_SECRET_KEY
    or REDIS_URL (webhooks are then refused with a message naming both). An invalid
    key stops the process (SecretKeyError)."""
    if settings.webhook_secret_key is None or settings.redis_url is None:
        return None
    box = SecretBox.from_keys(settings.webhook_secret_key)
    queue = create_queue(settings)
    await queue.connect()
    return QueuedWebhookSetup(settings, box, queue)


async def close_webhook_setup(setup: QueuedWebhookSetup | None) -> None:
    if setup is not None:
        await setup.queue.disconnect()
