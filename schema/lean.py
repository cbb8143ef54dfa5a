"""Lean resolvers: graphql-core (and the compiled executor) call the hottest fields directly.

Strawberry runs every resolver through argument conversion, an `Info` wrapper
and its field-extension chain, about 8 µs a call; the order dashboard resolves
hundreds of relation fields per response. A field marked `@lean` (no GraphQL
arguments; uses only its parent and, if it takes one, `info.context`) is declared
with Strawberry as usual, and `install_lean_resolvers` then points the compiled
field at the function itself. Strawberry has no switch for this, hence these few lines.

The compiled executor (schema/compiled) recognises lean resolvers with
`is_lean_resolver` and calls them for a whole level with one shared info.

Example:
    @strawberry.field
    @lean
    def customer(self, root: strawberry.Parent[OrderRecord], info: Info) -> User: ...
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import strawberry
from graphql import GraphQLObjectType, GraphQLResolveInfo
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

F = TypeVar("F", bound=Callable[..., Any])

_LEAN = "__storefront_lean__"


def lean(resolver: F) -> F:
    """Marks a `(self, root, info)` or `(self, root)` resolver to be called without
    Strawberry's wrapper."""
    setattr(resolver, _LEAN, True)
    return resolver


def is_lean_resolver(resolve: Callable[..., Any]) -> bool:
    """True for a field resolver `install_lean_resolvers` put in place."""
    return getattr(resolve, _LEAN, False) is True


def _direct(function: Callable[..., Any]) -> Callable[..., Any]:
    # graphql-core's info has the same `.context` the resolvers read.
    if len(inspect.signature(function).parameters) == 2:

        def resolve_root(source: Any, info: GraphQLResolveInfo[Any]) -> Any:
            return function(source, source)

        setattr(resolve_root, _LEAN, True)
        return resolve_root

    def resolve(source: Any, info: GraphQLResolveInfo[Any]) -> Any:
        return function(source, source, info)

    setattr(resolve, _LEAN, True)
    return resolve


def install_lean_resolvers(schema: strawberry.Schema) -> int:
    """Points every `@lean` field of `schema` at its function; returns how many."""
    installed = 0
    for graphql_type in schema._schema.type_map.values():
        if not isinstance(graphql_type, GraphQLObjectType):
            continue
        for graphql_field in graphql_type.fields.values():
            field = (graphql_field.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
            if not isinstance(field, StrawberryField) or field.base_resolver is None:
                continue
            function = field.base_resolver.wrapped_func
            if callable(function) and getattr(function, _LEAN, False) and not graphql_field.args:
                graphql_field.resolve = _direct(function)
                installed += 1
    return installed
