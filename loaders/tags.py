"""Cache tags: what a response read, in the vocabulary of change announcements.

A loader batch tags the request with every entity it returned (`Type:id`) and
every list it read (`Type:list:<column>=<id>`); writes announce the same tags
(resolvers/changes.py), so a cached response can be dropped exactly when
something it read has changed. The rules for each loader live in Loaders.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

TagRule = Callable[[Sequence[Any], Sequence[Any]], Iterable[str]]
"""Tags of one batch, from its keys and the values loaded for them."""


def _ids(value: Any) -> Iterable[int]:
    if value is None:
        return ()
    items = getattr(value, "items", None)
    if isinstance(items, list):
        return (item.id for item in items)
    if isinstance(value, list):
        return (item.id for item in value)
    return (value.id,)


def entities(type_name: str) -> TagRule:
    """`Type:id` of every record loaded (a record, a list of them, or a page)."""

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
