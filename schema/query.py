"""The root Query type: thin wiring from arguments to resolvers."""

from __future__ import annotations

import asyncio
from typing import Any

import strawberry

from loaders import OrderQuery, ProductQuery
from resolvers import catalog, nodes, orders, users, webhooks
from schema.context import Context, Info
from schema.entities import ENTITY_OF_TYPE
from schema.global_id import from_global_id, id_of_type
from schema.prefetch import prefetch
from schema.types.catalog import Category, Product
from schema.types.enums import ProductSort
from schema.types.inputs import OrderFilter, ProductFilter
from schema.types.node import Connection, Node
from schema.types.orders import Order
from schema.types.people import User
from schema.types.webhooks import Webhook

_ALL_ACTIVE_PRODUCTS = ProductQuery(active=True)
_ALL_ORDERS = OrderQuery()


async def _node(context: Context, type_name: str, id_: int) -> Any:
    """The entity of a validated global ID, as its row in the vocabulary says to
    fetch and show it."""
    entity = ENTITY_OF_TYPE[type_name]
    return await nodes.node(
        loaders=context.loaders,
        viewer=context.viewer,
        loader=entity.loader if entity.node else None,
        visibility=entity.visibility,
        owner=entity.owner,
        id_=id_,
    )


@strawberry.type
class Query:
    @strawberry.field
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        type_name, id_ = from_global_id(id, field="id")
        result: Any = await _node(info.context, type_name, id_)
        return result

    @strawberry.field(
        description="Same order as `ids`; null where an ID resolves to nothing visible."
    )
    async def nodes(self, info: Info, ids: list[strawberry.ID]) -> list[Node | None]:
        keys = [from_global_id(id_, field=f"ids[{i}]") for i, id_ in enumerate(ids)]
        context = info.context
        results: Any = await asyncio.gather(*(_node(context, t, i) for t, i in keys))
        return list(results)

    @strawberry.field(description="The authenticated user; null when anonymous.")
    def viewer(self, info: Info) -> User | None:
        result: Any = info.context.viewer.user
        return result

    @strawberry.field(description="Exactly one of `id` or `sku` (else BAD_USER_INPUT).")
    async def product(
        self, info: Info, id: strawberry.ID | None = None, sku: str | None = None
    ) -> Product | None:
        product_id = None if id is None else id_of_type(id, "Product", field="id")
        result: Any = await catalog.product(
            loaders=info.context.loaders, product_id=product_id, sku=sku
        )
        return result

    @strawberry.field
    async def products(
        self,
        info: Info,
        first: int | None = 20,
        after: str | None = None,
        filter: ProductFilter | None = None,
        sort: ProductSort | None = ProductSort.NEWEST,
    ) -> Connection[Product]:
        result: Any = await catalog.products(
            loaders=info.context.loaders,
            viewer=info.context.viewer,
            query=_ALL_ACTIVE_PRODUCTS if filter is None else filter.to_query(),
            sort=(sort or ProductSort.NEWEST).value,
            first=first,
            after=after,
        )
        await prefetch(info, result.page.items, "Product", connection=True)
        return result

    @strawberry.field(description="All categories, roots first, then by name.")
    async def categories(self, info: Info) -> list[Category]:
        result: Any = await catalog.categories(loaders=info.context.loaders)
        await prefetch(info, result, "Category")
        return result

    @strawberry.field
    def user(self, info: Info, id: strawberry.ID) -> User | None:
        result: Any = users.user(
            loaders=info.context.loaders, user_id=id_of_type(id, "User", field="id")
        )
        return result

    @strawberry.field(description="ADMIN only.")
    async def users(
        self, info: Info, first: int | None = 20, after: str | None = None
    ) -> Connection[User]:
        result: Any = await users.users(
            loaders=info.context.loaders, viewer=info.context.viewer, first=first, after=after
        )
        await prefetch(info, result.page.items, "User", connection=True)
        return result

    @strawberry.field(description="The owner or an ADMIN; null with FORBIDDEN otherwise.")
    async def order(self, info: Info, id: strawberry.ID) -> Order | None:
        result: Any = await orders.order(
            loaders=info.context.loaders,
            viewer=info.context.viewer,
            order_id=id_of_type(id, "Order", field="id"),
        )
        return result

    @strawberry.field(
        description="Newest first. ADMIN: all orders; CUSTOMER: only their own "
        "(customerId ignored); anonymous: UNAUTHENTICATED."
    )
    async def orders(
        self,
        info: Info,
        first: int | None = 20,
        after: str | None = None,
        filter: OrderFilter | None = None,
    ) -> Connection[Order]:
        result: Any = await orders.orders(
            loaders=info.context.loaders,
            viewer=info.context.viewer,
            query=_ALL_ORDERS if filter is None else filter.to_query(),
            first=first,
            after=after,
        )
        await prefetch(info, result.page.items, "Order", connection=True)
        return result

    @strawberry.field(description="ADMIN only. Newest first.")
    async def webhooks(
        self, info: Info, first: int | None = 20, after: str | None = None
    ) -> Connection[Webhook]:
        result: Any = await webhooks.webhooks(
            loaders=info.context.loaders, viewer=info.context.viewer, first=first, after=after
        )
        return result
