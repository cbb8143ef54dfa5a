"""Webhooks: create, delete, list, and redeliver a failed delivery. ADMIN only.

The process edge supplies what a webhook needs beyond the database through
`WebhookSetup` (server/events/webhooks/setup.py): the URL policy, the secret
box (Fernet under WEBHOOK_SECRET_KEY) and the job queue. Without it (no
WEBHOOK_SECRET_KEY, or no REDIS_URL for the queue) creating a webhook is
refused with a message naming the missing setting.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from typing import Protocol

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from loaders import Loaders
from loaders.pagination import NEWEST
from loaders.records import WebhookDeliveryRecord, WebhookRecord
from loaders.sql import record_columns
from loaders.webhooks import webhooks_count, webhooks_page
from models import Webhook, WebhookDelivery, utcnow
from resolvers.errors import Forbidden, InvalidInput, NotConfigured, NotFound
from resolvers.paging import Connection, page_args
from resolvers.viewer import Viewer
from resolvers.webhook_urls import UrlPolicy, check_url

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32

_WEBHOOK_COLUMNS = record_columns(Webhook.__table__, WebhookRecord)
_DELIVERY_COLUMNS = record_columns(WebhookDelivery.__table__, WebhookDeliveryRecord)


class WebhookSetup(Protocol):
    """What webhooks need from the process edge."""

    @property
    def policy(self) -> UrlPolicy: ...

    @property
    def max_attempts(self) -> int: ...

    def seal(self, secret: str) -> str:
        """The secret encrypted for storage."""
        ...

    async def enqueue(self, delivery_ids: Sequence[int]) -> None:
        """Queues the delivery jobs; a lost enqueue is recovered by the sweep."""
        ...


def _require_admin(viewer: Viewer) -> None:
    viewer.require_user()
    if not viewer.is_admin:
        raise Forbidden("Only admins may manage webhooks.")


def _require_setup(setup: WebhookSetup | None) -> WebhookSetup:
    if setup is None:
        raise NotConfigured(
            "Webhooks are not configured on this server: set WEBHOOK_SECRET_KEY and REDIS_URL."
        )
    return setup


def new_secret() -> str:
    """A Standard Webhooks signing secret: `whsec_` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _check_events(events: Sequence[str]) -> None:
    if not events:
        raise InvalidInput("`input.events` must name at least one event.", field="input.events")
    if len(set(events)) != len(events):
        raise InvalidInput("`input.events` must not repeat an event.", field="input.events")


async def create_webhook(
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    viewer: Viewer,
    setup: WebhookSetup | None,
    url: str,
    events: Sequence[str],
) -> tuple[WebhookRecord, str]:
    """A new active webhook and its secret (the only time the secret is seen)."""
    _require_admin(viewer)
    _check_events(events)
    setup = _require_setup(setup)
    target = await check_url(url, setup.policy, field="input.url")
    secret = new_secret()
    async with sessionmaker.begin() as session:
        created = await session.execute(
            insert(Webhook)
            .values(
                url=target.url,
                events=list(events),
                secret=setup.seal(secret),
                active=True,
                created_at=utcnow(),
            )
            .returning(*_WEBHOOK_COLUMNS)
        )
        webhook = WebhookRecord(*created.one())
    return webhook, secret


async def delete_webhook(
    *, sessionmaker: async_sessionmaker[AsyncSession], viewer: Viewer, webhook_id: int
) -> int:
    """Deletes the webhook and its deliveries (pending ones are dropped: their jobs
    find no row and stop)."""
    _require_admin(viewer)
    async with sessionmaker.begin() as session:
        await session.execute(
            delete(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id)
        )
        deleted = await session.execute(
            delete(Webhook).where(Webhook.id == webhook_id).returning(Webhook.id)
        )
        if deleted.scalar_one_or_none() is None:
            raise NotFound("No webhook has this ID.", field="id")
    return webhook_id


async def redeliver(
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    viewer: Viewer,
    setup: WebhookSetup | None,
    delivery_id: int,
) -> WebhookDeliveryRecord:
    """A FAILED delivery made PENDING again, with a fresh attempt budget and its messageId."""
    _require_admin(viewer)
    setup = _require_setup(setup)
    async with sessionmaker.begin() as session:
        found = await session.execute(
            select(WebhookDelivery.status, WebhookDelivery.attempts, Webhook.active)
            .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
            .where(WebhookDelivery.id == delivery_id)
            .with_for_update()
        )
        row = found.one_or_none()
        if row is None:
            raise NotFound("No webhook delivery has this ID.", field="id")
        if row.status != "failed":
            raise InvalidInput("Only a FAILED delivery can be redelivered.", field="id")
        if not row.active:
            raise InvalidInput(
                "The delivery's webhook is inactive (its endpoint answered 410 Gone).", field="id"
            )
        updated = await session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id)
            .values(
                status="pending",
                max_attempts=row.attempts + setup.max_attempts,
                next_attempt_at=utcnow(),
            )
            .returning(*_DELIVERY_COLUMNS)
        )
        delivery = WebhookDeliveryRecord(*updated.one())
    await setup.enqueue([delivery.id])
    return delivery


async def webhooks(
    *, loaders: Loaders, viewer: Viewer, first: int | None, after: str | None
) -> Connection[WebhookRecord]:
    _require_admin(viewer)
    args = page_args(first=first, after=after, sort=NEWEST, default=20)
    page = await webhooks_page(sessionmaker=loaders.sessionmaker, args=args)

    async def count() -> int:
        return await webhooks_count(sessionmaker=loaders.sessionmaker)

    return Connection(page, count)


async def deliveries_of(
    *,
    loaders: Loaders,
    viewer: Viewer,
    webhook: WebhookRecord,
    status: str | None,
    first: int | None,
    after: str | None,
) -> Connection[WebhookDeliveryRecord]:
    _require_admin(viewer)
    args = page_args(first=first, after=after, sort=NEWEST, default=10)
    page = await loaders.deliveries_page_by_webhook_id.load((webhook.id, status, args))

    async def count() -> int:
        return await loaders.delivery_count_by_webhook_id.load((webhook.id, status))

    return Connection(page, count)


async def webhook_of(*, loaders: Loaders, delivery: WebhookDeliveryRecord) -> WebhookRecord:
    found = await loaders.webhook_by_id.load(delivery.webhook_id)
    if found is None:  # deleted with its deliveries in one transaction: a race only
        raise NotFound("The delivery's webhook no longer exists.")
    return found
