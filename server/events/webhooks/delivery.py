"""One attempt of one delivery, and what it leaves in the delivery row.

The row is the truth: an attempt reads it (nothing to do unless PENDING; one
of a webhook a 410 deactivated meanwhile is FAILED unattempted), checks the
URL again (SSRF guard, against DNS rebinding: the request goes to the address
just checked, with the host name in `Host` and in TLS SNI), posts the stored
body signed afresh, and records the outcome in one transaction guarded by the
attempt count it read, so two runs of one job never both count:

- 2xx: DELIVERED;
- 410 Gone: the webhook is deactivated, this delivery and its other PENDING ones FAILED;
- anything else (or no answer): `attempts` up, then FAILED at the budget, else
  PENDING with `next_attempt_at` = now + exponential backoff with full jitter.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

import httpx
from saq.utils import exponential_backoff
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import Webhook, WebhookDelivery, utcnow
from resolvers.errors import InvalidInput
from resolvers.webhook_urls import Target, UrlPolicy, check_url
from server.events.webhooks.secret_box import SecretBox
from server.events.webhooks.signing import signed_headers

logger = logging.getLogger("storefront.webhooks")

Result = Literal["delivered", "retry", "failed", "skipped"]


@dataclass(frozen=True, slots=True)
class Outcome:
    result: Result
    event_type: str = ""
    retry_in: float | None = None
    """Seconds until the next attempt (for `retry`)."""


@dataclass(frozen=True, slots=True)
class DeliveryOptions:
    policy: UrlPolicy
    retry_base_seconds: float
    max_retry_seconds: float
    timeout_seconds: float


def _pinned_request(target: Target, address: str) -> tuple[str, dict[str, str], dict[str, str]]:
    """The URL at `address`, the Host header and the TLS server name of `target`."""
    parts = urlsplit(target.url)
    host = f"[{address}]" if ipaddress.ip_address(address).version == 6 else address
    default = 443 if target.scheme == "https" else 80
    netloc = host if target.port == default else f"{host}:{target.port}"
    url = urlunsplit((target.scheme, netloc, parts.path or "/", parts.query, ""))
    host_header = parts.netloc.rsplit("@", 1)[-1]
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    return url, {"host": host_header}, extensions


async def _post(
    client: httpx.AsyncClient,
    target: Target,
    headers: dict[str, str],
    body: bytes,
    seconds: float,
) -> int:
    url, host, extensions = _pinned_request(target, target.addresses[0])
    response = await client.post(
        url, content=body, headers={**headers, **host}, extensions=extensions, timeout=seconds
    )
    await response.aclose()
    return response.status_code  # fmt: skip


async def attempt(
    delivery_id: int,
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    box: SecretBox,
    client: httpx.AsyncClient,
    options: DeliveryOptions,
) -> Outcome:
    async with sessionmaker() as session:
        row = (
            await session.execute(
                select(WebhookDelivery, Webhook)
                .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
                .where(WebhookDelivery.id == delivery_id)
            )
        ).one_or_none()
    if row is None:
        return Outcome("skipped")
    delivery, webhook = row
    if delivery.status != "pending":
        return Outcome("skipped", delivery.event_type)
    if not webhook.active:
        # Fanned out while a 410 deactivated its webhook: it will never be attempted.
        await _fail_unattempted(sessionmaker, delivery)
        return Outcome("skipped", delivery.event_type)
    status_code: int | None = None
    try:
        target = await check_url(webhook.url, options.policy, field="url")
        body = delivery.body.encode()
        headers = signed_headers(
            box.open(webhook.secret), delivery.message_id, int(time.time()), body
        )
        status_code = await _post(client, target, headers, body, options.timeout_seconds)
    except InvalidInput as refused:
        logger.warning("webhook %s refused at delivery: %s", webhook.id, refused.message)
    except httpx.HTTPError as error:
        logger.info("webhook delivery %s got no answer: %r", delivery_id, error)
    return await _record(sessionmaker, delivery, status_code, options)


async def _fail_unattempted(
    sessionmaker: async_sessionmaker[AsyncSession], delivery: WebhookDelivery
) -> None:
    async with sessionmaker.begin() as session:
        await session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery.id, WebhookDelivery.status == "pending")
            .values(status="failed", next_attempt_at=None)
        )


async def _record(
    sessionmaker: async_sessionmaker[AsyncSession],
    delivery: WebhookDelivery,
    status_code: int | None,
    options: DeliveryOptions,
) -> Outcome:
    now = utcnow()
    attempts = delivery.attempts + 1
    values: dict[str, object] = {"attempts": attempts, "last_status_code": status_code}
    retry_in: float | None = None
    gone = status_code == 410
    if status_code is not None and 200 <= status_code < 300:
        result: Result = "delivered"
        values.update(status="delivered", delivered_at=now, next_attempt_at=None)
    elif gone or attempts >= delivery.max_attempts:
        result = "failed"
        values.update(status="failed", next_attempt_at=None)
    else:
        result = "retry"
        retry_in = exponential_backoff(
            attempts, options.retry_base_seconds, options.max_retry_seconds, jitter=True
        )
        values.update(next_attempt_at=now + timedelta(seconds=retry_in))
    async with sessionmaker.begin() as session:
        if gone:
            # The webhook's row first: every 410 of one webhook queues on this lock, so
            # their bulk updates below never take delivery rows in crossing orders
            # (on PostgreSQL, 50 concurrent 410s deadlocked each other and every rollback
            # became one more attempt). A second 410 then finds its delivery FAILED.
            await session.execute(
                update(Webhook).where(Webhook.id == delivery.webhook_id).values(active=False)
            )
        changed = await session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id == delivery.id,
                WebhookDelivery.status == "pending",
                WebhookDelivery.attempts == delivery.attempts,
            )
            .values(**values)
            .returning(WebhookDelivery.id)
        )
        if changed.scalar_one_or_none() is None:
            return Outcome("skipped", delivery.event_type)  # another run counted this attempt
        if gone:
            # Its other deliveries will never be attempted: say so rather than leave them PENDING.
            await session.execute(
                update(WebhookDelivery)
                .where(
                    WebhookDelivery.webhook_id == delivery.webhook_id,
                    WebhookDelivery.status == "pending",
                )
                .values(status="failed", next_attempt_at=None)
            )
    return Outcome(result, delivery.event_type, retry_in)
