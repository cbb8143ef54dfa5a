"""Order and OrderItem."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry

from loaders.records import OrderItemRecord, OrderRecord
from resolvers import orders
from schema.context import Info
from schema.global_id import to_global_id
from schema.lean import lean
from schema.types.catalog import Product
from schema.types.enums import OrderStatus
from schema.types.node import Node, is_record
from schema.types.people import User


@strawberry.type
class Order(Node):
    status: OrderStatus
    total_cents: int = strawberry.field(
        description="Sum of quantity * unitPriceCents over its items."
    )
    created_at: datetime
    is_type_of = is_record(OrderRecord)

    @strawberry.field
    @lean
    def customer(self, root: strawberry.Parent[OrderRecord], info: Info) -> User:
        result: Any = orders.customer_of(loaders=info.context.loaders, order=root)
        return result

    @strawberry.field(description="In insertion order.")
    @lean
    def items(self, root: strawberry.Parent[OrderRecord], info: Info) -> list[OrderItem]:
        result: Any = orders.items_of(loaders=info.context.loaders, order=root)
        return result


@strawberry.type
class OrderItem:
    quantity: int
    unit_price_cents: int = strawberry.field(
        description="The product's price when the order was placed."
    )

    @strawberry.field
    @lean
    def id(self, root: strawberry.Parent[OrderItemRecord]) -> strawberry.ID:
        return strawberry.ID(to_global_id(OrderItemRecord.type_name, root.id))

    @strawberry.field
    @lean
    def product(self, root: strawberry.Parent[OrderItemRecord], info: Info) -> Product:
        result: Any = orders.product_of_item(loaders=info.context.loaders, item=root)
        return result

    @strawberry.field
    @lean
    def order(self, root: strawberry.Parent[OrderItemRecord], info: Info) -> Order:
        result: Any = orders.order_of_item(loaders=info.context.loaders, item=root)
        return result
