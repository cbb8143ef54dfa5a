"""Cache tags: what a response read, in the vocabulary of change announcements.

A loader batch tags the request with every entity it returned (`Type:id`) and
every list it read (`Type:list:<column>=<id>`); writes announce the same tags
(resolvers/changes.py), so a cached response can be dropped exactly when
something it read has changed. The rules for each loader live in Loaders.

`Type` is the entity's `type_name`, declared once on its record
(loaders/records.py); `entity_tag` and `list_tag` are the only places that
spell a tag, so a misspelt type is a NameError, never a silently stale cache.

Example:
    entity_tag(OrderRecord, 7)                # "Order:7"
    list_tag(OrderRecord, "user_id", 3)       # "Order:list:user_id=3"
    list_tag(OrderRecord, "user_id", "{}")    # a template: "Order:list:user_id={}"
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar, Protocol

TagRule = Callable[[Sequence[Any], Sequence[Any]], Iterable[str]]
"""Tags of one batch, from its keys and the values loaded for them."""


class Tagged(Protocol):
    """The record of an entity type: `type_name` names its tags."""

    type_name: ClassVar[str]


def entity_tag(kind: type[Tagged], id_: object) -> str:
    """`Type:id`: one entity (and the aggregates shown on it)."""
    return f"{kind.type_name}:{id_}"


def list_tag(kind: type[Tagged], column: str | None = None, value: object = None) -> str:
    """`Type:list`, the root listing of a type, or `Type:list:column=value`, the list
    under one parent."""
    if column is None:
        return f"{kind.type_name}:list"
    return f"{kind.type_name}:list:{column}={value}"


def _ids(value: Any) -> Iterable[int]:
    if value is None:
        return ()
    items = getattr(value, "items", None)
    if isinstance(items, list):
        return (item.id for item in items)
    if isinstance(value, list):
        return (item.id for item in value)
    return (value.id,)


def entities(kind: type[Tagged]) -> TagRule:
    """`Type:id` of every record loaded (a record, a list of them, or a page)."""
    type_name = kind.type_name

    def rule(_keys: Sequence[Any], values: Sequence[Any]) -> Iterable[str]:
        return (f"{type_name}:{id_}" for value in values for id_ in _ids(value))

    return rule


def keyed(template: str, *, part: int | None = None) -> TagRule:
    """`template` filled with each key (or the key's `part`-th element)."""

    def rule(keys: Sequence[Any], _values: Sequence[Any]) -> Iterable[str]:
        return (template.format(key if part is None else key[part]) for key in keys)

    return rule


def both(*rules: TagRule) -> TagRule:
    def rule(keys: Sequence[Any], values: Sequence[Any]) -> Iterable[str]:
        return (tag for each in rules for tag in each(keys, values))

    return rule


def on_miss(tag: str) -> TagRule:
    """`tag` when some key found nothing (e.g. `Product:list` for an unknown sku,
    which a later createProduct may take)."""

    def rule(_keys: Sequence[Any], values: Sequence[Any]) -> Iterable[str]:
        return (tag,) if any(value is None for value in values) else ()

    return rule
