"""Input types of the mutations."""

from __future__ import annotations

import strawberry


@strawberry.input
class OrderLineInput:
    product_id: strawberry.ID
    quantity: int = strawberry.field(description="1..1000")


@strawberry.input
class PlaceOrderInput:
    lines: list[OrderLineInput] = strawberry.field(
        description="1..100 lines; each product at most once; only active products."
    )


@strawberry.input
class AddReviewInput:
    product_id: strawberry.ID
    rating: int = strawberry.field(description="1..5")
    body: str = strawberry.field(description="1..5000 characters.")


@strawberry.input
class CreateProductInput:
    sku: str
    name: str
    description: str = ""
    price_cents: int
    category_id: strawberry.ID


@strawberry.input
class UpdateProductInput:
    name: str | None = None
    description: str | None = None
    price_cents: int | None = None
    active: bool | None = None
    category_id: strawberry.ID | None = None
