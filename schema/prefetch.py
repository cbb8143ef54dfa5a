"""Level-by-level prefetching of the relations a query selects.

DataLoaders already batch every relation into one statement per level, but
each relation field still hands graphql-core a future, and graphql-core wraps
every awaitable in a task: on the order dashboard that is ~700 tasks per
response, most of the execution time. So a resolver that returns records walks
the query's selection below it and loads each selected relation for ALL those
records at once (one `load_many` per relation, levels gathered concurrently).
The relation fields then find their values already in the loaders and return
them synchronously (`loaders.loaded`). Statements stay one per level; prefetching is an
optimisation only: a relation it does not know still resolves through its loader.

The compiled executor (schema/compiled) runs level by level and so loads each level in
one batch itself: under it (`levels_batched`) prefetching would only repeat its loads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLResolveInfo,
    InlineFragmentNode,
    SelectionSetNode,
)

from loaders import Loaders
from schema.entities import ENTITY_OF_TYPE


@dataclass(frozen=True, slots=True)
class Relation:
    """How one GraphQL field of a type loads: loader, key attribute, child type."""

    loader: str
    key: str
    child_type: str | None = None
    many: bool = False


def _by_id(type_name: str, key: str) -> Relation:
    """A to-one relation, loaded by the by-id loader the vocabulary names for `type_name`."""
    loader = ENTITY_OF_TYPE[type_name].loader
    if loader is None:
        raise ValueError(f"{type_name} has no by-id loader")
    return Relation(loader, key, type_name)


# (GraphQL type, field) -> how it loads. Fields with arguments (nested
# connections) are not here: they load per their arguments and prefetch below
# themselves.
RELATIONS: dict[tuple[str, str], Relation] = {
    ("Order", "customer"): _by_id("User", "user_id"),
    ("Order", "items"): Relation("items_by_order_id", "id", "OrderItem", many=True),
    ("OrderItem", "product"): _by_id("Product", "product_id"),
    ("OrderItem", "order"): _by_id("Order", "order_id"),
    ("Product", "category"): _by_id("Category", "category_id"),
    ("Product", "averageRating"): Relation("review_stats_by_product_id", "id"),
    ("Product", "reviewCount"): Relation("review_stats_by_product_id", "id"),
    ("Review", "author"): _by_id("User", "user_id"),
    ("Review", "product"): _by_id("Product", "product_id"),
    ("Category", "parent"): _by_id("Category", "parent_id"),
    ("Category", "children"): Relation("children_by_category_id", "id", "Category", many=True),
}

CONNECTION_NODE_PATHS = (("nodes",), ("edges", "node"))

levels_batched: ContextVar[bool] = ContextVar("storefront_levels_batched", default=False)
"""True while the compiled executor runs: it batches every level itself."""


def _fields(
    selection_set: SelectionSetNode | None,
    type_name: str,
    fragments: dict[str, FragmentDefinitionNode],
) -> Iterable[FieldNode]:
    if selection_set is None:
        return
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            yield selection
        elif isinstance(selection, InlineFragmentNode):
            condition = selection.type_condition
            if condition is None or condition.name.value == type_name:
                yield from _fields(selection.selection_set, type_name, fragments)
        elif isinstance(selection, FragmentSpreadNode):
            fragment = fragments.get(selection.name.value)
            if fragment is not None and fragment.type_condition.name.value == type_name:
                yield from _fields(fragment.selection_set, type_name, fragments)


def _merge(nodes: Iterable[FieldNode]) -> dict[str, list[SelectionSetNode]]:
    """Selected field name -> every sub-selection under it (aliases merged)."""
    merged: dict[str, list[SelectionSetNode]] = {}
    for node in nodes:
        selections = merged.setdefault(node.name.value, [])
        if node.selection_set is not None:
            selections.append(node.selection_set)
    return merged


def _selected(
    selections: Sequence[SelectionSetNode], type_name: str, fragments: dict[str, Any]
) -> dict[str, list[SelectionSetNode]]:
    return _merge(node for s in selections for node in _fields(s, type_name, fragments))


async def prefetch(
    info: GraphQLResolveInfo[Any] | Any,
    records: Sequence[Any],
    type_name: str,
    *,
    connection: bool = False,
) -> None:
    """Loads every relation the current field selects below `records`, level by level."""
    if not records or levels_batched.get():
        return
    raw_info = getattr(info, "_raw_info", info)
    fragments: dict[str, FragmentDefinitionNode] = raw_info.fragments
    selections = [n.selection_set for n in raw_info.field_nodes if n.selection_set is not None]
    if connection:
        for path in CONNECTION_NODE_PATHS:
            level = selections
            for step in path:
                level = [s for sel in level for s in _selected([sel], "", fragments).get(step, [])]
            selections_of_nodes = level
            if selections_of_nodes:
                await _prefetch_level(
                    raw_info.context.loaders, records, type_name, selections_of_nodes, fragments
                )
        return
    await _prefetch_level(raw_info.context.loaders, records, type_name, selections, fragments)


async def _prefetch_level(
    loaders: Loaders,
    records: Sequence[Any],
    type_name: str,
    selections: list[SelectionSetNode],
    fragments: dict[str, FragmentDefinitionNode],
) -> None:
    selected = _selected(selections, type_name, fragments)
    jobs = []
    for field_name, sub_selections in selected.items():
        relation = RELATIONS.get((type_name, field_name))
        if relation is not None:
            jobs.append(_load(loaders, records, relation, sub_selections, fragments))
    if jobs:
        await asyncio.gather(*jobs)


async def _load(
    loaders: Loaders,
    records: Sequence[Any],
    relation: Relation,
    sub_selections: list[SelectionSetNode],
    fragments: dict[str, FragmentDefinitionNode],
) -> None:
    keys = list(
        dict.fromkeys(k for r in records if (k := getattr(r, relation.key, None)) is not None)
    )
    if not keys:
        return
    loader = getattr(loaders, relation.loader)
    # A key that fails is its field's to report, at the field's own path, when the
    # field resolves (as the compiled executor reports it): loading ahead must not
    # fail the field above it instead. Nothing below a failed key is loaded ahead.
    loads = await asyncio.gather(*(loader.load(key) for key in keys), return_exceptions=True)
    values = [value for value in loads if not isinstance(value, BaseException)]
    if relation.child_type is None or not sub_selections:
        return
    children = (
        [child for value in values for child in value]
        if relation.many
        else [value for value in values if value is not None]
    )
    await _prefetch_level(loaders, children, relation.child_type, sub_selections, fragments)
