"""GraphQL enums, with values equal to what the database stores."""

from __future__ import annotations

from enum import Enum

import strawberry


@strawberry.enum
class Role(Enum):
    CUSTOMER = "customer"
    ADMIN = "admin"


@strawberry.enum
class OrderStatus(Enum):
    PENDING = "pending"
    PAID = "paid"
    SHIPPED = "shipped"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


@strawberry.enum
class ProductSort(Enum):
    NEWEST = "NEWEST"
    PRICE_ASC = "PRICE_ASC"
    PRICE_DESC = "PRICE_DESC"
    NAME = "NAME"
