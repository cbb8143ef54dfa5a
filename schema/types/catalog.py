"""Category and Product."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry

from loaders.records import CategoryRecord, ProductRecord
from resolvers import catalog, reviews
from schema.context import Info
from schema.lean import lean
from schema.prefetch import prefetch
from schema.types.node import Connection, Node, is_record

if TYPE_CHECKING:
    from schema.types.reviews import Review


@strawberry.type
class Category(Node):
    name: str
    is_type_of = is_record(CategoryRecord)

    @strawberry.field
    @lean
    def parent(self, root: strawberry.Parent[CategoryRecord], info: Info) -> Category | None:
        result: Any = catalog.parent_of(loaders=info.context.loaders, category=root)
        return result

    @strawberry.field
    @lean
    def children(self, root: strawberry.Parent[CategoryRecord], info: Info) -> list[Category]:
        result: Any = catalog.children_of(loaders=info.context.loaders, category=root)
        return result

    @strawberry.field(description="Active products of this category, newest first.")
    @lean
    async def products(
        self,
        root: strawberry.Parent[CategoryRecord],
        info: Info,
        first: int | None = 10,
        after: str | None = None,
    ) -> Connection[Product]:
        result: Any = await catalog.products_of_category(
            loaders=info.context.loaders, category=root, first=first, after=after
        )
        await prefetch(info, result.page.items, "Product", connection=True)
        return result


@strawberry.type
class Product(Node):
    sku: str
    name: str
    description: str
    price_cents: int
    active: bool
    created_at: datetime
    updated_at: datetime
    is_type_of = is_record(ProductRecord)

    @strawberry.field
    @lean
    def category(self, root: strawberry.Parent[ProductRecord], info: Info) -> Category:
        result: Any = catalog.category_of(loaders=info.context.loaders, product=root)
        return result

    @strawberry.field(description="Newest first.")
    @lean
    async def reviews(
        self,
        root: strawberry.Parent[ProductRecord],
        info: Info,
        first: int | None = 10,
        after: str | None = None,
    ) -> Connection[Annotated[Review, strawberry.lazy("schema.types.reviews")]]:
        result: Any = await reviews.reviews_of_product(
            loaders=info.context.loaders, product=root, first=first, after=after
        )
        await prefetch(info, result.page.items, "Review", connection=True)
        return result

    @strawberry.field(description="Mean rating of all its reviews; null when it has none.")
    @lean
    def average_rating(self, root: strawberry.Parent[ProductRecord], info: Info) -> float | None:
        return catalog.average_rating_of(loaders=info.context.loaders, product=root)

    @strawberry.field
    @lean
    def review_count(self, root: strawberry.Parent[ProductRecord], info: Info) -> int:
        return catalog.review_count_of(loaders=info.context.loaders, product=root)
