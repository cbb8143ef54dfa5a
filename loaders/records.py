"""Read-side records: the rows loaders hand out.

Plain slotted dataclasses rather than ORM instances: the read path needs no
identity map, change tracking or lazy loading, and building one of these costs
a fraction of an ORM object. Field names match the columns, so GraphQL types
can read leaves as plain attributes.

Records are shared (one load serves every field that asks; the entity cache keeps
them) and must never be changed once built; they are not `frozen`, though: a frozen
dataclass sets each field through `object.__setattr__`, six times the cost of a
plain one (890 against 150 ns for a product), and a dashboard builds hundreds per
request. Being mutable, they are not hashable: key by `id`.

An entity's record names its type once, in `type_name` (the GraphQL type's
name): the loaders tag what they read with it (loaders/tags.py), and the
entity vocabulary (schema/entities.py) refers to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar


@dataclass(slots=True)
class UserRecord:
    type_name: ClassVar[str] = "User"

    id: int
    email: str
    name: str
    avatar_url: str | None
    role: str
    created_at: datetime


@dataclass(slots=True)
class CategoryRecord:
    type_name: ClassVar[str] = "Category"

    id: int
    name: str
    parent_id: int | None


@dataclass(slots=True)
class ProductRecord:
    type_name: ClassVar[str] = "Product"

    id: int
    sku: str
    name: str
    description: str
    price_cents: int
    category_id: int
    active: bool
    created_at: datetime
    updated_at: datetime


@dataclass(slots=True)
class OrderRecord:
    type_name: ClassVar[str] = "Order"

    id: int
    user_id: int
    status: str
    total_cents: int
    created_at: datetime


@dataclass(slots=True)
class OrderItemRecord:
    type_name: ClassVar[str] = "OrderItem"

    id: int
    order_id: int
    product_id: int
    quantity: int
    unit_price_cents: int


@dataclass(slots=True)
class ReviewRecord:
    type_name: ClassVar[str] = "Review"

    id: int
    product_id: int
    user_id: int
    rating: int
    body: str
    created_at: datetime


@dataclass(slots=True)
class ReviewStats:
    """Aggregates of one product's reviews."""

    count: int
    average: float | None


@dataclass(slots=True)
class WebhookRecord:
    type_name: ClassVar[str] = "Webhook"

    id: int
    url: str
    events: list[str]
    active: bool
    created_at: datetime


@dataclass(slots=True)
class WebhookDeliveryRecord:
    type_name: ClassVar[str] = "WebhookDelivery"

    id: int
    webhook_id: int
    message_id: str
    event_type: str
    status: str
    attempts: int
    last_status_code: int | None
    created_at: datetime
    delivered_at: datetime | None
    next_attempt_at: datetime | None
