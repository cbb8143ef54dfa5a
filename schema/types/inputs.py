"""Input types of the read API, and their translation into loader queries."""

from __future__ import annotations

from datetime import UTC, datetime

import strawberry

from loaders import OrderQuery, ProductQuery
from schema.global_id import id_of_type
from schema.types.enums import OrderStatus


@strawberry.input
class ProductFilter:
    category_id: strawberry.ID | None = None
    search: str | None = strawberry.field(
        default=None, description="Case-insensitive match on the product name."
    )
    min_price_cents: int | None = None
    max_price_cents: int | None = None
    active: bool | None = strawberry.field(
        default=True,
        description="Defaults to active products only; "
        "admins may pass false or null to see inactive ones.",
    )

    def to_query(self) -> ProductQuery:
        category_id = (
            None
            if self.category_id is None
            else id_of_type(self.category_id, "Category", field="filter.categoryId")
        )
        return ProductQuery(
            category_id=category_id,
            search=self.search or None,
            min_price_cents=self.min_price_cents,
            max_price_cents=self.max_price_cents,
            active=self.active,
        )


def _utc(value: datetime | None) -> datetime | None:
    # A DateTime without an offset is taken as UTC rather than refused.
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


@strawberry.input
class OrderFilter:
    status: OrderStatus | None = None
    customer_id: strawberry.ID | None = None
    created_after: datetime | None = strawberry.field(
        default=None, description="Inclusive; a value without an offset is taken as UTC."
    )
    created_before: datetime | None = strawberry.field(
        default=None, description="Exclusive; a value without an offset is taken as UTC."
    )

    def to_query(self) -> OrderQuery:
        user_id = (
            None
            if self.customer_id is None
            else id_of_type(self.customer_id, "User", field="filter.customerId")
        )
        return OrderQuery(
            status=None if self.status is None else self.status.value,
            user_id=user_id,
            created_after=_utc(self.created_after),
            created_before=_utc(self.created_before),
        )
