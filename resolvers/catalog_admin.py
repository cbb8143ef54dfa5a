"""Admin writes of the catalog: creating and updating products."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from loaders.records import ProductRecord
from loaders.sql import record_columns
from models import Category, Product, utcnow
from resolvers.changes import announce
from resolvers.errors import Forbidden, InvalidInput, NotFound
from resolvers.events import Event, product_event, record_events
from resolvers.idempotency import KeyedWrite, claim_key, record_key
from resolvers.validation import is_unique_violation, require_text
from resolvers.viewer import Viewer

MAX_SKU_LENGTH = 64
MAX_NAME_LENGTH = 200
MAX_DESCRIPTION_LENGTH = 10_000
MAX_PRICE_CENTS = 2**31 - 1

# What the writes return: the read record's columns, in its field order.
_PRODUCT_COLUMNS = record_columns(Product.__table__, ProductRecord)


@dataclass(frozen=True, slots=True)
class ProductChanges:
    """The fields `updateProduct` sets; None leaves a field as it is."""

    name: str | None = None
    description: str | None = None
    price_cents: int | None = None
    active: bool | None = None
    category_id: int | None = None


def _require_admin(viewer: Viewer) -> None:
    viewer.require_user()
    if not viewer.is_admin:
        raise Forbidden("Only admins may change the catalog.")


def _check_price(price_cents: int) -> None:
    if not 0 <= price_cents <= MAX_PRICE_CENTS:
        raise InvalidInput("`input.priceCents` must be 0 or more.", field="input.priceCents")


async def _require_category(session: AsyncSession, category_id: int) -> None:
    if await session.scalar(select(Category.id).where(Category.id == category_id)) is None:
        raise InvalidInput("No category has this ID.", field="input.categoryId")


async def create_product(
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    viewer: Viewer,
    sku: str,
    name: str,
    description: str,
    price_cents: int,
    category_id: int,
    idempotency: KeyedWrite | None = None,
) -> tuple[ProductRecord, list[Event]]:
    """A new active product; a taken `sku` is BAD_USER_INPUT, even under a race."""
    _require_admin(viewer)
    sku = require_text(sku, field="input.sku", max_length=MAX_SKU_LENGTH)
    name = require_text(name, field="input.name", max_length=MAX_NAME_LENGTH)
    if len(description) > MAX_DESCRIPTION_LENGTH:
        raise InvalidInput(
            f"`input.description` must be at most {MAX_DESCRIPTION_LENGTH} characters.",
            field="input.description",
        )
    _check_price(price_cents)
    try:
        async with sessionmaker.begin() as session:
            await claim_key(idempotency, session)
            await _require_category(session, category_id)
            now = utcnow()
            created = await session.execute(
                insert(Product)
                .values(
                    sku=sku,
                    name=name,
                    description=description,
                    price_cents=price_cents,
                    category_id=category_id,
                    active=True,
                    created_at=now,
                    updated_at=now,
                )
                .returning(*_PRODUCT_COLUMNS)
            )
            product = ProductRecord(*created.one())
            changes = announce(
                "createProduct", product_id=product.id, category_id=product.category_id
            )
            events = [product_event("product.created", product, changes)]
            await record_events(session, events)
            await record_key(
                idempotency, session, field="createProduct", result_id=product.id, events=events
            )
    except IntegrityError as error:
        if is_unique_violation(error, constraint="uq_products_sku", columns="products.sku"):
            raise InvalidInput(
                f"A product with sku {sku!r} already exists.", field="input.sku"
            ) from None
        raise
    return product, events


async def update_product(
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    viewer: Viewer,
    product_id: int,
    changes: ProductChanges,
    idempotency: KeyedWrite | None = None,
) -> tuple[ProductRecord, list[Event]]:
    """Sets the given fields and bumps `updated_at`."""
    _require_admin(viewer)
    values: dict[str, Any] = {}
    if changes.name is not None:
        values["name"] = require_text(changes.name, field="input.name", max_length=MAX_NAME_LENGTH)
    if changes.description is not None:
        if len(changes.description) > MAX_DESCRIPTION_LENGTH:
            raise InvalidInput(
                f"`input.description` must be at most {MAX_DESCRIPTION_LENGTH} characters.",
                field="input.description",
            )
        values["description"] = changes.description
    if changes.price_cents is not None:
        _check_price(changes.price_cents)
        values["price_cents"] = changes.price_cents
    if changes.active is not None:
        values["active"] = changes.active
    async with sessionmaker.begin() as session:
        await claim_key(idempotency, session)
        old_category = await session.scalar(
            select(Product.category_id).where(Product.id == product_id).with_for_update()
        )
        if old_category is None:
            raise NotFound("No product has this ID.", field="id")
        if changes.category_id is not None:
            await _require_category(session, changes.category_id)
            values["category_id"] = changes.category_id
        values["updated_at"] = utcnow()
        updated = await session.execute(
            update(Product)
            .where(Product.id == product_id)
            .values(**values)
            .returning(*_PRODUCT_COLUMNS)
        )
        product = ProductRecord(*updated.one())
        changed = announce(
            "updateProduct",
            product_id=product.id,
            category_id=product.category_id,
            old_category_id=old_category,
        )
        events = [product_event("product.updated", product, changed)]
        await record_events(session, events)
        await record_key(
            idempotency, session, field="updateProduct", result_id=product.id, events=events
        )
    return product, events
