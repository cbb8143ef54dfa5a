"""Writes of orders: placing one, and moving it through its status machine."""

from __future__ import annotations

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from loaders.records import OrderItemRecord, OrderRecord
from loaders.sql import record_columns
from models import Order, OrderItem, Product
from resolvers.changes import announce
from resolvers.errors import Forbidden, InvalidInput, NotFound
from resolvers.events import Event, order_event, record_events
from resolvers.idempotency import KeyedWrite, claim_key, record_key
from resolvers.validation import require_range
from resolvers.viewer import Viewer

MAX_LINES = 100
MAX_QUANTITY = 1000
# total_cents is an INTEGER column and a GraphQL Int.
MAX_TOTAL_CENTS = 2**31 - 1

# The status machine: PENDING → PAID → SHIPPED → COMPLETED; PENDING or PAID → CANCELLED.
TRANSITIONS: dict[str, frozenset[str]] = {
    "pending": frozenset({"paid", "cancelled"}),
    "paid": frozenset({"shipped", "cancelled"}),
    "shipped": frozenset({"completed"}),
    "completed": frozenset(),
    "cancelled": frozenset(),
}

# What the writes return: the read record's columns, in its field order.
_ORDER_COLUMNS = record_columns(Order.__table__, OrderRecord)
_ITEM_COLUMNS = record_columns(OrderItem.__table__, OrderItemRecord)


async def place_order(
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    viewer: Viewer,
    lines: list[tuple[int, int]],
    idempotency: KeyedWrite | None = None,
) -> tuple[OrderRecord, list[Event]]:
    """A PENDING order of (product id, quantity) lines for the viewer, at current prices.

    One transaction: prices are read inside it (locked against change on
    PostgreSQL) and copied to the items, so the total matches what was charged.
    With `idempotency`, its key is recorded in that transaction.
    """
    user = viewer.require_user()
    if not 1 <= len(lines) <= MAX_LINES:
        raise InvalidInput(
            f"An order has 1 to {MAX_LINES} lines, got {len(lines)}.", field="input.lines"
        )
    seen: set[int] = set()
    for index, (product_id, quantity) in enumerate(lines):
        require_range(quantity, 1, MAX_QUANTITY, field=f"input.lines[{index}].quantity")
        if product_id in seen:
            raise InvalidInput(
                "Each product may appear only once in an order.",
                field=f"input.lines[{index}].productId",
            )
        seen.add(product_id)

    async with sessionmaker.begin() as session:
        await claim_key(idempotency, session)
        rows = await session.execute(
            select(Product.id, Product.price_cents, Product.active)
            .where(Product.id.in_(seen))
            .with_for_update(read=True)
        )
        products = {row.id: row for row in rows}
        for index, (product_id, _) in enumerate(lines):
            product = products.get(product_id)
            field = f"input.lines[{index}].productId"
            if product is None:
                raise InvalidInput("No product has this ID.", field=field)
            if not product.active:
                raise InvalidInput("This product is no longer available.", field=field)
        total = sum(quantity * products[pid].price_cents for pid, quantity in lines)
        if total > MAX_TOTAL_CENTS:
            raise InvalidInput(
                "The order's total is too large; split it into several orders.",
                field="input.lines",
            )
        created = await session.execute(
            insert(Order)
            .values(user_id=user.id, status="pending", total_cents=total)
            .returning(*_ORDER_COLUMNS)
        )
        order = OrderRecord(*created.one())
        created_items = await session.execute(
            insert(OrderItem).returning(*_ITEM_COLUMNS, sort_by_parameter_order=True),
            [
                {
                    "order_id": order.id,
                    "product_id": pid,
                    "quantity": quantity,
                    "unit_price_cents": products[pid].price_cents,
                }
                for pid, quantity in lines
            ],
        )
        items = [OrderItemRecord(*row) for row in created_items]
        changes = announce("placeOrder", order_id=order.id, user_id=user.id)
        events = [order_event("order.placed", order, items, changes)]
        await record_events(session, events)
        await record_key(
            idempotency, session, field="placeOrder", result_id=order.id, events=events
        )
    return order, events


async def cancel_order(
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    viewer: Viewer,
    order_id: int,
    idempotency: KeyedWrite | None = None,
) -> tuple[OrderRecord, list[Event]]:
    """The customer who placed the order (while PENDING or PAID) or an admin cancels it."""
    viewer.require_user()
    return await _change_status(
        sessionmaker=sessionmaker,
        viewer=viewer,
        order_id=order_id,
        status="cancelled",
        write="cancelOrder",
        idempotency=idempotency,
    )


async def update_order_status(
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    viewer: Viewer,
    order_id: int,
    status: str,
    idempotency: KeyedWrite | None = None,
) -> tuple[OrderRecord, list[Event]]:
    """An admin moves an order along any legal transition."""
    viewer.require_user()
    if not viewer.is_admin:
        raise Forbidden("Only admins may change an order's status.")
    return await _change_status(
        sessionmaker=sessionmaker,
        viewer=viewer,
        order_id=order_id,
        status=status,
        write="updateOrderStatus",
        idempotency=idempotency,
    )


async def _change_status(
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    viewer: Viewer,
    order_id: int,
    status: str,
    write: str,
    idempotency: KeyedWrite | None,
) -> tuple[OrderRecord, list[Event]]:
    async with sessionmaker.begin() as session:
        await claim_key(idempotency, session)
        row = (
            await session.execute(
                select(*_ORDER_COLUMNS).where(Order.id == order_id).with_for_update()
            )
        ).one_or_none()
        if row is None:
            raise NotFound("No order has this ID.", field="id")
        current = OrderRecord(*row)
        if not viewer.can_see_private_data_of(current.user_id):
            raise Forbidden("Only the customer who placed this order or an admin may change it.")
        if status not in TRANSITIONS[current.status]:
            raise InvalidInput(
                f"An order cannot go from {current.status.upper()} to {status.upper()}.",
                field="status" if write == "updateOrderStatus" else "id",
            )
        # The status condition makes a concurrent change lose cleanly (SQLite has
        # no row locks; FOR UPDATE already serialises this on PostgreSQL).
        updated = (
            await session.execute(
                update(Order)
                .where(Order.id == order_id, Order.status == current.status)
                .values(status=status)
                .returning(*_ORDER_COLUMNS)
            )
        ).one_or_none()
        if updated is None:
            raise InvalidInput("The order changed meanwhile; read it again.", field="id")
        order = OrderRecord(*updated)
        items = [
            OrderItemRecord(*row)
            for row in await session.execute(
                select(*_ITEM_COLUMNS).where(OrderItem.order_id == order.id).order_by(OrderItem.id)
            )
        ]
        changes = announce(write, order_id=order.id, user_id=order.user_id)
        events = [order_event("order.status_changed", order, items, changes)]
        await record_events(session, events)
        await record_key(idempotency, session, field=write, result_id=order.id, events=events)
    return order, events
