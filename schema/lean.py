"""Lean resolvers: graphql-core (and the compiled executor) call the hottest fields directly.

Strawberry runs every resolver through argument conversion, an `Info` wrapper
and its field-extension chain, about 8 µs a call; the order dashboard resolves
hundreds of relation fields per response, a catalog page 50 `reviews(first: 3)`. A
field marked `@lean` (uses only its parent and, if it takes one, graphql-core's info:
`info.context`, or `prefetch(info, ...)`) is declared with Strawberry as usual, and
`install_lean_resolvers` then points the compiled field at the function itself. Its
arguments, if any, must be built-in scalars, whose GraphQL values are what Strawberry
would pass, and the field must have no extension or permission class (else startup
fails: the wrapper would be needed). Strawberry has no switch for this, hence these
few lines.

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
from graphql import (
    GraphQLField,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLScalarType,
    get_nullable_type,
)
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
        for name, graphql_field in graphql_type.fields.items():
            field = (graphql_field.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
            if not isinstance(field, StrawberryField) or field.base_resolver is None:
                continue
            function = field.base_resolver.wrapped_func
            if not (callable(function) and getattr(function, _LEAN, False)):
                continue
            if not graphql_field.args:
                graphql_field.resolve = _direct(function)
            elif _plain_arguments(field, graphql_field):
                graphql_field.resolve = _direct_with_arguments(
                    function, _python_names(schema, field)
                )
            else:
                raise TypeError(
                    f"@lean {graphql_type.name}.{name}: its arguments must be"
                    " built-in scalars, and the field free of extensions and permissions"
                )
            installed += 1
    return installed


# Scalars whose GraphQL value is the Python value Strawberry would pass (ID is a str).
_PLAIN_SCALARS = frozenset({"Int", "Float", "String", "Boolean", "ID"})


def _plain_arguments(field: StrawberryField, graphql_field: GraphQLField) -> bool:
    """Whether Strawberry's wrapper would do nothing for this field's call but rename
    its arguments: built-in scalars only (no input objects, enums or custom scalars to
    convert), and no field extension or permission to run."""
    if field.extensions or field.permission_classes:
        return False
    return all(
        isinstance(kind := get_nullable_type(argument.type), GraphQLScalarType)
        and kind.name in _PLAIN_SCALARS
        for argument in graphql_field.args.values()
    )


def _python_names(schema: strawberry.Schema, field: StrawberryField) -> dict[str, str]:
    """Each GraphQL argument name (as the schema's name converter made it) to its
    Python parameter name."""
    names = schema.config.name_converter
    return {names.get_graphql_name(argument): argument.python_name for argument in field.arguments}


def _direct_with_arguments(
    function: Callable[..., Any], python_names: dict[str, str]
) -> Callable[..., Any]:
    """`_direct` for a field with plain arguments, passed on by their Python names."""
    renamed = {g: p for g, p in python_names.items() if g != p}
    takes_info = len(inspect.signature(function).parameters) - len(python_names) == 3

    def resolve(source: Any, info: GraphQLResolveInfo[Any], **arguments: Any) -> Any:
        if renamed:
            arguments = {renamed.get(name, name): value for name, value in arguments.items()}
        if takes_info:
            return function(source, source, info, **arguments)
        return function(source, source, **arguments)

    setattr(resolve, _LEAN, True)
    return resolve
