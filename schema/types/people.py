"""User: a public profile plus fields only the user themself or an admin sees."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry

from loaders.records import UserRecord
from resolvers import users
from schema.context import Info
from schema.lean import lean
from schema.prefetch import prefetch
from schema.types.enums import OrderStatus, Role
from schema.types.node import Connection, Node, is_record

if TYPE_CHECKING:
    from schema.types.orders import Order
    from schema.types.reviews import Review

_VISIBLE = "Visible to the user themself and to admins; null for everyone else (no error)."


@strawberry.type
class User(Node):
    name: str
    avatar_url: str | None
    created_at: datetime
    is_type_of = is_record(UserRecord)

    @strawberry.field(description=_VISIBLE)
    def email(self, root: strawberry.Parent[UserRecord], info: Info) -> str | None:
        return users.private_field(viewer=info.context.viewer, user=root, value=root.email)

    @strawberry.field(description=_VISIBLE)
    def role(self, root: strawberry.Parent[UserRecord], info: Info) -> Role | None:
        role = users.private_field(viewer=info.context.viewer, user=root, value=root.role)
        return None if role is None else Role(role)

    @strawberry.field(
        description="Newest first. The user themself or an admin; "
        "anyone else gets null and a FORBIDDEN error."
    )
    async def orders(
        self,
        root: strawberry.Parent[UserRecord],
        info: Info,
        first: int | None = 10,
        after: str | None = None,
        status: OrderStatus | None = None,
    ) -> Connection[Annotated[Order, strawberry.lazy("schema.types.orders")]] | None:
        result: Any = await users.orders_of(
            loaders=info.context.loaders,
            viewer=info.context.viewer,
            user=root,
            status=None if status is None else status.value,
            first=first,
            after=after,
        )
        await prefetch(info, result.page.items, "Order", connection=True)
        return result

    @strawberry.field(description="Newest first. Public.")
    @lean
    async def reviews(
        self,
        root: strawberry.Parent[UserRecord],
        info: Info,
        first: int | None = 10,
        after: str | None = None,
    ) -> Connection[Annotated[Review, strawberry.lazy("schema.types.reviews")]]:
        result: Any = await users.reviews_of(
            loaders=info.context.loaders, user=root, first=first, after=after
        )
        await prefetch(info, result.page.items, "Review", connection=True)
        return result

    @strawberry.field(description="Number of orders. Same visibility as `orders`.")
    async def order_count(self, root: strawberry.Parent[UserRecord], info: Info) -> int | None:
        return await users.order_count_of(
            loaders=info.context.loaders, viewer=info.context.viewer, user=root
        )
