"""Review."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry

from loaders.records import ReviewRecord
from resolvers import reviews
from schema.context import Info
from schema.lean import lean
from schema.types.catalog import Product
from schema.types.node import Node, is_record
from schema.types.people import User


@strawberry.type
class Review(Node):
    rating: int
    body: str
    created_at: datetime
    is_type_of = is_record(ReviewRecord)

    @strawberry.field
    @lean
    def author(self, root: strawberry.Parent[ReviewRecord], info: Info) -> User:
        result: Any = reviews.author_of(loaders=info.context.loaders, review=root)
        return result

    @strawberry.field
    @lean
    def product(self, root: strawberry.Parent[ReviewRecord], info: Info) -> Product:
        result: Any = reviews.product_of_review(loaders=info.context.loaders, review=root)
        return result
