"""Webhook, WebhookDelivery and their enums (../shared/spec/events.graphql)."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

import strawberry

from loaders.records import WebhookDeliveryRecord, WebhookRecord
from resolvers import webhooks
from schema.context import Info
from schema.lean import lean
from schema.types.node import Connection, Node, is_record


@strawberry.enum
class WebhookEvent(Enum):
    """Values are the dotted event types of the outbox (`name.lower()`, first `_` a dot)."""

    ORDER_PLACED = "order.placed"
    ORDER_STATUS_CHANGED = "order.status_changed"
    PRODUCT_CREATED = "product.created"
    PRODUCT_UPDATED = "product.updated"
    REVIEW_ADDED = "review.added"


@strawberry.enum
class WebhookDeliveryStatus(Enum):
    """PENDING: not delivered yet, retried with exponential backoff; DELIVERED: the
    endpoint answered 2xx; FAILED: given up after the last attempt (dead letter), can be
    redelivered."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


@strawberry.type
class Webhook(Node):
    url: str
    active: bool
    created_at: datetime
    is_type_of = is_record(WebhookRecord)

    @strawberry.field
    @lean
    def events(self, root: strawberry.Parent[WebhookRecord]) -> list[WebhookEvent]:
        return [WebhookEvent(event) for event in root.events]

    @strawberry.field(description="Newest first.")
    async def deliveries(
        self,
        root: strawberry.Parent[WebhookRecord],
        info: Info,
        first: int | None = 10,
        after: str | None = None,
        status: WebhookDeliveryStatus | None = None,
    ) -> Connection[WebhookDelivery]:
        result: Any = await webhooks.deliveries_of(
            loaders=info.context.loaders,
            viewer=info.context.viewer,
            webhook=root,
            status=None if status is None else status.value,
            first=first,
            after=after,
        )
        return result


@strawberry.type
class WebhookDelivery(Node):
    message_id: str = strawberry.field(
        description="The Standard Webhooks `webhook-id`: the same on every attempt of this "
        "delivery."
    )
    status: WebhookDeliveryStatus
    attempts: int
    last_status_code: int | None = strawberry.field(
        description="HTTP status of the last attempt; null when it got no answer."
    )
    created_at: datetime
    delivered_at: datetime | None
    next_attempt_at: datetime | None
    is_type_of = is_record(WebhookDeliveryRecord)

    @strawberry.field
    @lean
    def event(self, root: strawberry.Parent[WebhookDeliveryRecord]) -> WebhookEvent:
        return WebhookEvent(root.event_type)

    @strawberry.field
    async def webhook(self, root: strawberry.Parent[WebhookDeliveryRecord], info: Info) -> Webhook:
        result: Any = await webhooks.webhook_of(loaders=info.context.loaders, delivery=root)
        return result


@strawberry.input
class CreateWebhookInput:
    url: str = strawberry.field(
        description="An https:// URL; http:// only when the server's WEBHOOK_ALLOW_HTTP setting "
        "allows it."
    )
    events: list[WebhookEvent] = strawberry.field(description="At least one, no duplicates.")


@strawberry.type
class CreateWebhookPayload:
    webhook: Webhook
    secret: str = strawberry.field(
        description="The signing secret (`whsec_` + base64 of 24 or more random bytes): "
        "returned here, once, never again."
    )
