"""The Relay `Node` interface, `PageInfo` and the generic connection types."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

import strawberry
from graphql import GraphQLAbstractType, GraphQLResolveInfo

from resolvers.paging import Connection as PageConnection
from schema.entities import TYPE_OF_RECORD
from schema.global_id import to_global_id
from schema.lean import lean

if TYPE_CHECKING:
    from loaders.pagination import Page

NodeT = TypeVar("NodeT")


@strawberry.interface
class Node:
    @strawberry.field
    @lean
    def id(self, root: strawberry.Parent[Any]) -> strawberry.ID:
        """The global ID; shared by every Node type through this interface."""
        return strawberry.ID(to_global_id(TYPE_OF_RECORD[type(root)], root.id))

    @classmethod
    def resolve_type(
        cls, obj: Any, _info: GraphQLResolveInfo[Any], _type: GraphQLAbstractType
    ) -> str | None:
        return TYPE_OF_RECORD.get(type(obj))


def is_record(record_type: type) -> Any:
    """An `is_type_of` for a Node type whose values are `record_type` records."""

    def is_type_of(cls: type, obj: Any, _info: GraphQLResolveInfo[Any]) -> bool:
        return type(obj) is record_type

    return classmethod(is_type_of)


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[NodeT]):
    cursor: str
    node: NodeT


class PageEdge:
    """An `Edge` of a page, its cursor encoded only when read: most queries select
    `node` alone, and encoding every item's cursor was a few percent of a catalog page."""

    __slots__ = ("_page", "node")

    def __init__(self, page: Page[Any], node: Any) -> None:
        self._page = page
        self.node = node

    @property
    def cursor(self) -> str:
        return self._page.cursor(self.node)


@strawberry.type
class Connection(Generic[NodeT]):
    """A forward-paginated list; the root value is a resolvers.paging.Connection."""

    @strawberry.field
    @lean
    def edges(self, root: strawberry.Parent[PageConnection[Any]]) -> list[Edge[NodeT]]:
        page = root.page
        edges = [PageEdge(page, item) for item in page.items]
        return cast("list[Edge[NodeT]]", edges)  # read as Edge: `cursor` and `node`

    @strawberry.field
    @lean
    def nodes(self, root: strawberry.Parent[PageConnection[Any]]) -> list[NodeT]:
        items: list[NodeT] = root.page.items
        return items

    @strawberry.field
    @lean
    def page_info(self, root: strawberry.Parent[PageConnection[Any]]) -> PageInfo:
        page = root.page
        items = page.items
        return PageInfo(
            has_next_page=page.has_next_page,
            has_previous_page=page.has_previous_page,
            start_cursor=page.cursor(items[0]) if items else None,
            end_cursor=page.cursor(items[-1]) if items else None,
        )

    @strawberry.field
    @lean
    async def total_count(self, root: strawberry.Parent[PageConnection[Any]]) -> int:
        return await root.count()
