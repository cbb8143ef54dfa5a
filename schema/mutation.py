"""The root Mutation type: decode IDs, call the write, then keep the request coherent.

After each committed write the request's loaders are cleared (and primed with
what was written), so fields read later in the same request see the new state,
and the write's changes are published.

Under an Idempotency-Key (`Context.idempotency`) the write records its key in
its own transaction. When the key's write already committed (`replay`), the
field answers with the recorded entity and writes nothing; it republishes the
recorded events (resolvers/events.py), since the first request may have lost its
connection before announcing them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import strawberry

from loaders.records import OrderRecord, ProductRecord, ReviewRecord
from loaders.tags import Tagged
from resolvers import catalog_admin, ordering, reviewing, webhooks
from resolvers.errors import NotFound
from resolvers.events import Event, load_events
from schema.context import Info
from schema.entities import ENTITY_OF_TYPE
from schema.global_id import id_of_type, to_global_id
from schema.types.catalog import Product
from schema.types.enums import OrderStatus
from schema.types.mutation_inputs import (
    AddReviewInput,
    CreateProductInput,
    PlaceOrderInput,
    UpdateProductInput,
)
from schema.types.orders import Order
from schema.types.reviews import Review
from schema.types.webhooks import CreateWebhookInput, CreateWebhookPayload, WebhookDelivery


def _by_id_loader(info: Info, kind: type[Tagged]) -> Any:
    """The by-id loader the entity vocabulary names for records of `kind`."""
    loader = ENTITY_OF_TYPE[kind.type_name].loader
    if loader is None:
        raise LookupError(f"{kind.type_name} has no by-id loader")
    return getattr(info.context.loaders, loader)


async def _committed(info: Info, record: Any, events: Sequence[Event]) -> Any:
    info.context.loaders.clear()
    _by_id_loader(info, type(record)).prime(record.id, record)
    if info.context.idempotency is not None:
        info.context.idempotency.done = True
    await info.context.changes.publish(events)
    return record


async def _replayed(info: Info, kind: type[Tagged]) -> Any | None:
    """The entity a committed write under this request's key recorded; None when the
    write is to run."""
    keyed = info.context.idempotency
    if keyed is None or keyed.replay is None:
        return None
    record = await _by_id_loader(info, kind).load(keyed.replay.result_id)
    if record is None:
        raise NotFound("The entity this Idempotency-Key wrote no longer exists.")
    keyed.done = True
    events = await load_events(
        sessionmaker=info.context.loaders.sessionmaker, event_ids=keyed.replay.event_ids
    )
    await info.context.changes.publish(events)
    return record


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="Authenticated. Creates a PENDING order for the viewer at current prices, "
        "atomically."
    )
    async def place_order(self, info: Info, input: PlaceOrderInput) -> Order:
        if (replayed := await _replayed(info, OrderRecord)) is not None:
            return replayed
        lines = [
            (
                id_of_type(line.product_id, "Product", field=f"input.lines[{i}].productId"),
                line.quantity,
            )
            for i, line in enumerate(input.lines)
        ]
        order, events = await ordering.place_order(
            sessionmaker=info.context.loaders.sessionmaker,
            viewer=info.context.viewer,
            lines=lines,
            idempotency=info.context.idempotency,
        )
        return await _committed(info, order, events)

    @strawberry.mutation(description="The owner while PENDING or PAID, or an ADMIN.")
    async def cancel_order(self, info: Info, id: strawberry.ID) -> Order:
        if (replayed := await _replayed(info, OrderRecord)) is not None:
            return replayed
        order, events = await ordering.cancel_order(
            sessionmaker=info.context.loaders.sessionmaker,
            viewer=info.context.viewer,
            order_id=id_of_type(id, "Order", field="id"),
            idempotency=info.context.idempotency,
        )
        return await _committed(info, order, events)

    @strawberry.mutation(description="ADMIN only.")
    async def update_order_status(
        self, info: Info, id: strawberry.ID, status: OrderStatus
    ) -> Order:
        if (replayed := await _replayed(info, OrderRecord)) is not None:
            return replayed
        order, events = await ordering.update_order_status(
            sessionmaker=info.context.loaders.sessionmaker,
            viewer=info.context.viewer,
            order_id=id_of_type(id, "Order", field="id"),
            status=status.value,
            idempotency=info.context.idempotency,
        )
        return await _committed(info, order, events)

    @strawberry.mutation(
        description="Authenticated; at most one review per user and product (else BAD_USER_INPUT)."
    )
    async def add_review(self, info: Info, input: AddReviewInput) -> Review:
        if (replayed := await _replayed(info, ReviewRecord)) is not None:
            return replayed
        review, events = await reviewing.add_review(
            sessionmaker=info.context.loaders.sessionmaker,
            viewer=info.context.viewer,
            product_id=id_of_type(input.product_id, "Product", field="input.productId"),
            rating=input.rating,
            body=input.body,
            idempotency=info.context.idempotency,
        )
        return await _committed(info, review, events)

    @strawberry.mutation(description="ADMIN only; sku must be unique (else BAD_USER_INPUT).")
    async def create_product(self, info: Info, input: CreateProductInput) -> Product:
        if (replayed := await _replayed(info, ProductRecord)) is not None:
            return replayed
        product, events = await catalog_admin.create_product(
            sessionmaker=info.context.loaders.sessionmaker,
            viewer=info.context.viewer,
            sku=input.sku,
            name=input.name,
            description=input.description,
            price_cents=input.price_cents,
            category_id=id_of_type(input.category_id, "Category", field="input.categoryId"),
            idempotency=info.context.idempotency,
        )
        return await _committed(info, product, events)

    @strawberry.mutation(description="ADMIN only.")
    async def update_product(
        self, info: Info, id: strawberry.ID, input: UpdateProductInput
    ) -> Product:
        if (replayed := await _replayed(info, ProductRecord)) is not None:
            return replayed
        category_id = (
            None
            if input.category_id is None
            else id_of_type(input.category_id, "Category", field="input.categoryId")
        )
        product, events = await catalog_admin.update_product(
            sessionmaker=info.context.loaders.sessionmaker,
            viewer=info.context.viewer,
            product_id=id_of_type(id, "Product", field="id"),
            changes=catalog_admin.ProductChanges(
                name=input.name,
                description=input.description,
                price_cents=input.price_cents,
                active=input.active,
                category_id=category_id,
            ),
            idempotency=info.context.idempotency,
        )
        return await _committed(info, product, events)

    @strawberry.mutation(description="ADMIN only.")
    async def create_webhook(self, info: Info, input: CreateWebhookInput) -> CreateWebhookPayload:
        webhook, secret = await webhooks.create_webhook(
            sessionmaker=info.context.loaders.sessionmaker,
            viewer=info.context.viewer,
            setup=info.context.webhooks,
            url=input.url,
            events=[event.value for event in input.events],
        )
        info.context.loaders.clear()
        result: Any = CreateWebhookPayload(webhook=webhook, secret=secret)  # type: ignore[arg-type]
        return result

    @strawberry.mutation(
        description="ADMIN only. Returns the deleted webhook's ID; its pending deliveries are "
        "dropped."
    )
    async def delete_webhook(self, info: Info, id: strawberry.ID) -> strawberry.ID:
        webhook_id = await webhooks.delete_webhook(
            sessionmaker=info.context.loaders.sessionmaker,
            viewer=info.context.viewer,
            webhook_id=id_of_type(id, "Webhook", field="id"),
        )
        info.context.loaders.clear()
        return strawberry.ID(to_global_id("Webhook", webhook_id))

    @strawberry.mutation(
        description="ADMIN only. Queues a FAILED delivery again with a fresh attempt budget and "
        "the same messageId."
    )
    async def redeliver_webhook_delivery(self, info: Info, id: strawberry.ID) -> WebhookDelivery:
        delivery = await webhooks.redeliver(
            sessionmaker=info.context.loaders.sessionmaker,
            viewer=info.context.viewer,
            setup=info.context.webhooks,
            delivery_id=id_of_type(id, "WebhookDelivery", field="id"),
        )
        info.context.loaders.clear()
        result: Any = delivery
        return result
