"""Reads of orders and their items, with the owner-or-admin rule."""

from __future__ import annotations

from typing import Any

from loaders import Loaders, OrderQuery, listings, loaded
from loaders.pagination import NEWEST
from loaders.records import OrderItemRecord, OrderRecord
from resolvers.errors import Forbidden
from resolvers.paging import Connection, page_args
from resolvers.viewer import Viewer


async def order(*, loaders: Loaders, viewer: Viewer, order_id: int) -> OrderRecord | None:
    """The owner or an admin; anyone else (anonymous too) gets FORBIDDEN; a missing
    order is null."""
    found: OrderRecord | None = await loaders.order_by_id.load(order_id)
    if found is None:
        return None
    if not viewer.can_see_private_data_of(found.user_id):
        raise Forbidden("Only the customer who placed this order or an admin may see it.")
    return found


async def orders(
    *,
    loaders: Loaders,
    viewer: Viewer,
    query: OrderQuery,
    first: int | None,
    after: str | None,
) -> Connection[OrderRecord]:
    """Admins see every order; a customer only their own (customerId is ignored)."""
    user = viewer.require_user()
    if not viewer.is_admin:
        query = OrderQuery(
            status=query.status,
            user_id=user.id,
            created_after=query.created_after,
            created_before=query.created_before,
        )
    args = page_args(first=first, after=after, sort=NEWEST, default=20)
    page = await listings.orders_page(
        sessionmaker=loaders.sessionmaker, dialect=loaders.dialect, query=query, args=args
    )
    loaders.tag_listing(OrderRecord, page.items)

    async def count() -> int:
        return await listings.orders_count(
            sessionmaker=loaders.sessionmaker, dialect=loaders.dialect, query=query
        )

    return Connection(page, count)


def customer_of(*, loaders: Loaders, order: OrderRecord) -> Any:
    """The record, or its future when not loaded yet."""
    return loaded(loaders.user_by_id, order.user_id)


def items_of(*, loaders: Loaders, order: OrderRecord) -> Any:
    """The record, or its future when not loaded yet."""
    return loaded(loaders.items_by_order_id, order.id)


def product_of_item(*, loaders: Loaders, item: OrderItemRecord) -> Any:
    """The record, or its future when not loaded yet."""
    return loaded(loaders.product_by_id, item.product_id)


def order_of_item(*, loaders: Loaders, item: OrderItemRecord) -> Any:
    """The record, or its future when not loaded yet."""
    return loaded(loaders.order_by_id, item.order_id)
