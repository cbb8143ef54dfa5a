"""The event vocabulary: what a committed write tells the world, recorded in its outbox.

Every write records its events in `outbox_events` inside its own transaction
(`record_events`), so an event exists exactly when its write committed. The
relay (server/events/relay.py) publishes them afterwards, at least once; the
process that wrote also hands them to its change feed right after the commit.
An event's `data` is the entity as the API shows it to an ADMIN: camelCase
fields, global IDs, enum values and DateTimes as the API spells them, related
entities as `{"id": ...}`. Its `tags` are the cache tags the write changed
(resolvers/changes.py): the caches invalidate from events, and nothing else.

Example:
    async with sessionmaker.begin() as session:
        order = ...  # the write
        events = [order_event("order.placed", order, items, announce("placeOrder", ...))]
        await record_events(session, events)
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from loaders.records import (
    CategoryRecord,
    OrderItemRecord,
    OrderRecord,
    ProductRecord,
    ReviewRecord,
    UserRecord,
)
from models import OutboxEvent, utcnow
from resolvers.changes import Changes
from resolvers.global_ids import to_global_id

EVENT_TYPES: tuple[str, ...] = (
    "order.placed",
    "order.status_changed",
    "product.created",
    "product.updated",
    "review.added",
)

REQUEST_ID: ContextVar[str | None] = ContextVar("storefront_event_request_id", default=None)
"""The id of the request being served (set by the HTTP edge); recorded on its events."""


@dataclass(frozen=True, slots=True)
class Event:
    event_id: str  # uuid4 string
    type: str  # one of EVENT_TYPES
    entity_id: str  # global ID
    data: dict[str, Any]  # JSON-ready
    tags: frozenset[str]
    request_id: str | None
    occurred_at: datetime  # aware UTC


def new_event(type_: str, entity_id: str, data: dict[str, Any], changes: Changes) -> Event:
    """An event of this moment and request, with a fresh id."""
    if type_ not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type_!r}")
    return Event(
        str(uuid.uuid4()), type_, entity_id, data, changes.tags, REQUEST_ID.get(), utcnow()
    )


def changes_of(events: Iterable[Event]) -> Changes:
    """What `events` changed, as cache tags."""
    tags: set[str] = set()
    for event in events:
        tags |= event.tags
    return Changes.from_tags(tags)


# The entity as the API shows it to an ADMIN.


def _ref(kind: type[Any], id_: int) -> dict[str, str]:
    return {"id": to_global_id(kind.type_name, id_)}


def _time(value: datetime) -> str:
    return value.isoformat()  # as the DateTime scalar serialises it


def order_data(order: OrderRecord, items: Sequence[OrderItemRecord]) -> dict[str, Any]:
    return {
        "id": to_global_id(OrderRecord.type_name, order.id),
        "status": order.status.upper(),
        "totalCents": order.total_cents,
        "createdAt": _time(order.created_at),
        "customer": _ref(UserRecord, order.user_id),
        "items": [
            {
                "id": to_global_id(OrderItemRecord.type_name, item.id),
                "quantity": item.quantity,
                "unitPriceCents": item.unit_price_cents,
                "product": _ref(ProductRecord, item.product_id),
            }
            for item in items
        ],
    }


def product_data(product: ProductRecord) -> dict[str, Any]:
    return {
        "id": to_global_id(ProductRecord.type_name, product.id),
        "sku": product.sku,
        "name": product.name,
        "description": product.description,
        "priceCents": product.price_cents,
        "active": product.active,
        "createdAt": _time(product.created_at),
        "updatedAt": _time(product.updated_at),
        "category": _ref(CategoryRecord, product.category_id),
    }


def review_data(review: ReviewRecord) -> dict[str, Any]:
    return {
        "id": to_global_id(ReviewRecord.type_name, review.id),
        "rating": review.rating,
        "body": review.body,
        "createdAt": _time(review.created_at),
        "author": _ref(UserRecord, review.user_id),
        "product": _ref(ProductRecord, review.product_id),
    }


def order_event(
    type_: str, order: OrderRecord, items: Sequence[OrderItemRecord], changes: Changes
) -> Event:
    data = order_data(order, items)
    return new_event(type_, data["id"], data, changes)


def product_event(type_: str, product: ProductRecord, changes: Changes) -> Event:
    data = product_data(product)
    return new_event(type_, data["id"], data, changes)


def review_event(review: ReviewRecord, changes: Changes) -> Event:
    data = review_data(review)
    return new_event("review.added", data["id"], data, changes)


# The outbox.


async def record_events(session: AsyncSession, events: Sequence[Event]) -> None:
    """Adds `events` to the outbox in the caller's transaction (they commit with it)."""
    if not events:
        return
    await session.execute(
        insert(OutboxEvent),
        [
            {
                "event_id": event.event_id,
                "type": event.type,
                "entity_id": event.entity_id,
                "payload": event.data,
                "tags": sorted(event.tags),
                "request_id": event.request_id,
                "created_at": event.occurred_at,
            }
            for event in events
        ],
    )


def event_of(row: OutboxEvent) -> Event:
    """The event an outbox row holds."""
    return Event(
        row.event_id,
        row.type,
        row.entity_id,
        row.payload,
        frozenset(row.tags),
        row.request_id,
        row.created_at,
    )


async def load_events(
    *, sessionmaker: async_sessionmaker[AsyncSession], event_ids: Sequence[str]
) -> list[Event]:
    """The recorded events of these ids, in outbox order (pruned ones are missing)."""
    if not event_ids:
        return []
    async with sessionmaker() as session:
        rows = await session.scalars(
            select(OutboxEvent)
            .where(OutboxEvent.event_id.in_(list(event_ids)))
            .order_by(OutboxEvent.id)
        )
        return [event_of(row) for row in rows]
