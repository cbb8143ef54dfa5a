"""SQLAlchemy ORM models: the tables of ../shared/spec/database.md. No GraphQL here."""

from models.base import Base, BigId, UTCDateTime, utcnow
from models.catalog import Category, Product
from models.idempotency import IdempotencyKey
from models.order import ORDER_STATUSES, Order, OrderItem
from models.outbox import OutboxEvent
from models.review import Review
from models.user import ROLES, ApiToken, User
from models.webhook import DELIVERY_STATUSES, Webhook, WebhookDelivery

__all__ = [
    "DELIVERY_STATUSES",
    "ORDER_STATUSES",
    "ROLES",
    "ApiToken",
    "Base",
    "BigId",
    "Category",
    "IdempotencyKey",
    "Order",
    "OrderItem",
    "OutboxEvent",
    "Product",
    "Review",
    "UTCDateTime",
    "User",
    "Webhook",
    "WebhookDelivery",
    "utcnow",
]
