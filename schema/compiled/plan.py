"""Execution plans: what each selected field is and how its value completes, worked
out once per (document, operation, @skip/@include outcome) and kept with the document.

A plan is the part of graphql-core's execution that does not depend on the data:
field collection (fragments, inline fragments, @skip/@include, merged fields),
the field definitions, how each field is read (an attribute, a lean resolver, a full
resolver), its arguments when they hold no variables, and the completion of its
type (non-null, list, leaf, object, abstract). graphql-core redoes all of this for
every field of every object of every request; here it is looked up.

Field collection itself is graphql-core's own (`collect_fields`, `collect_subfields`),
so fragment matching, merging and directive semantics are exactly its.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from math import isfinite
from typing import Any

from graphql import (
    BooleanValueNode,
    DirectiveNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLAbstractType,
    GraphQLBoolean,
    GraphQLError,
    GraphQLField,
    GraphQLFloat,
    GraphQLID,
    GraphQLInt,
    GraphQLLeafType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    GraphQLString,
    OperationDefinitionNode,
    OperationType,
    VariableNode,
    Visitor,
    is_abstract_type,
    is_leaf_type,
    is_list_type,
    is_non_null_type,
    is_object_type,
    visit,
)
from graphql.execution.collect_fields import (
    FieldDetailsList,
    FragmentDetails,
    GroupedFieldSet,
    collect_fields,
    collect_subfields,
)
from graphql.execution.values import VariableValues, get_argument_values
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

from schema.lean import is_lean_resolver
from schema.prefetch import RELATIONS, Relation

# How a field's value is read.
TYPENAME = 0  # __typename: the runtime type's name
ATTRIBUTE = 1  # a plain Strawberry field: getattr(source, python_name)
LEAN = 2  # a @lean resolver: called with the source and an info used only for its context
RESOLVE = 3  # any other resolver: called as graphql-core calls it, with a full info

# How a value completes.
LEAF = 0
OBJECT = 1
ABSTRACT = 2
LIST = 3

MAX_VARIANTS = 16
"""Plans kept per operation, one per outcome of the @skip/@include variables."""

_DIRECTIVES = ("skip", "include")
_INTROSPECTION_ROOTS = frozenset({"__schema", "__type"})


@dataclass(slots=True, eq=False)
class Completion:
    """The completion of one wrapping level of a field's type.

    `nullable` says whether a null may stand at this position; `inner` is the item's
    completion of a list; `type` the leaf, object or abstract type.
    """

    kind: int
    nullable: bool
    type: Any
    inner: Completion | None = None
    # A leaf's output coercion, with fast paths for the built-in scalars.
    coerce: Callable[[Any], Any] | None = None
    # An object type's sub-selection (built on first use), or an abstract type's
    # sub-selection per runtime type name.
    selection: SelectionPlan | None = None
    selections: dict[str, SelectionPlan] = field(default_factory=dict)


@dataclass(slots=True, eq=False)
class FieldPlan:
    """One response key of a selection: the field, how it is read, how it completes."""

    key: str
    name: str
    details: FieldDetailsList
    nodes: list[FieldNode]
    definition: GraphQLField
    parent_type: GraphQLObjectType
    kind: int
    attribute: str | None
    resolve: Callable[..., Any] | None
    completion: Completion
    # Arguments: constant ones are coerced here once; `args_error` is the error
    # their coercion raised (every execution of the field reports it).
    has_args: bool = False
    static_args: dict[str, Any] | None = None
    args_error: GraphQLError | None = None
    # The loader a relation field reads through (schema/prefetch.py's RELATIONS): the
    # runner loads it for the whole level before the resolvers run.
    relation: Relation | None = None


@dataclass(slots=True, eq=False)
class SelectionPlan:
    """The fields selected on one concrete object type, in response order."""

    type: GraphQLObjectType
    fields: list[FieldPlan]


@dataclass(slots=True, eq=False)
class OperationPlan:
    """A compiled query operation for one outcome of its @skip/@include variables."""

    root: SelectionPlan


class Unsupported(Exception):
    """The document needs graphql-core's executor; the message says why."""


def unsupported_reason(document: DocumentNode, operation: OperationDefinitionNode) -> str | None:
    """Why `operation` cannot be compiled, or None when it can.

    Mutations and subscriptions, introspection, @defer/@stream and fragment
    variables go to graphql-core unchanged."""
    if operation.operation is not OperationType.QUERY:
        return f"{operation.operation.value} operation"
    found: list[str] = []

    class _Scan(Visitor):
        def enter_field(self, node: FieldNode, *_: Any) -> None:
            if node.name.value in _INTROSPECTION_ROOTS:
                found.append("introspection")

        def enter_directive(self, node: DirectiveNode, *_: Any) -> None:
            if node.name.value not in _DIRECTIVES:
                found.append(f"@{node.name.value}")

        def enter_fragment_definition(self, node: FragmentDefinitionNode, *_: Any) -> None:
            if getattr(node, "variable_definitions", None):
                found.append("fragment variables")

    visit(document, _Scan())
    return found[0] if found else None


def condition_variables(document: DocumentNode) -> tuple[str, ...]:
    """The variables any @skip/@include of `document` reads: the plan depends on them."""
    names: dict[str, None] = {}

    class _Scan(Visitor):
        def enter_directive(self, node: DirectiveNode, *_: Any) -> None:
            if node.name.value in _DIRECTIVES:
                for argument in node.arguments or ():
                    if isinstance(argument.value, VariableNode):
                        names[argument.value.name.value] = None

    visit(document, _Scan())
    return tuple(names)


def _constant(node: Any) -> bool:
    """True when an argument value holds no variable anywhere."""
    if isinstance(node, VariableNode):
        return False
    if isinstance(node, BooleanValueNode):
        return True
    for attribute in ("values", "fields"):
        children = getattr(node, attribute, None)
        if children is not None:
            return all(_constant(getattr(c, "value", c)) for c in children)
    return True


_INT_RANGE = range(-(2**31), 2**31)


def _leaf_coercion(leaf: GraphQLLeafType) -> Callable[[Any], Any]:
    """The type's own output coercion (identical output and errors to graphql-core's),
    behind a type check that returns the common values of the built-in scalars as
    they are: exactly what their coercion returns for them."""
    coerce: Callable[[Any], Any] = leaf.coerce_output_value
    if leaf is GraphQLString or leaf is GraphQLID:

        def text(value: Any) -> Any:
            return value if type(value) is str else coerce(value)

        return text
    if leaf is GraphQLInt:

        def whole(value: Any) -> Any:
            return value if type(value) is int and value in _INT_RANGE else coerce(value)

        return whole
    if leaf is GraphQLBoolean:

        def truth(value: Any) -> Any:
            return value if type(value) is bool else coerce(value)

        return truth
    if leaf is GraphQLFloat:

        def number(value: Any) -> Any:
            return value if type(value) is float and isfinite(value) else coerce(value)

        return number
    return coerce


def completion_of(type_: GraphQLOutputType, nullable: bool = True) -> Completion:
    if is_non_null_type(type_):
        assert isinstance(type_, GraphQLNonNull)
        return completion_of(type_.of_type, nullable=False)
    if is_list_type(type_):
        assert isinstance(type_, GraphQLList)
        return Completion(LIST, nullable, type_, inner=completion_of(type_.of_type))
    if is_leaf_type(type_):
        assert isinstance(type_, GraphQLLeafType)
        return Completion(LEAF, nullable, type_, coerce=_leaf_coercion(type_))
    if is_abstract_type(type_):
        return Completion(ABSTRACT, nullable, type_)
    assert is_object_type(type_)
    return Completion(OBJECT, nullable, type_)


def _reader(definition: GraphQLField) -> tuple[int, str | None, Callable[..., Any] | None]:
    resolve = definition.resolve
    if resolve is None:
        return RESOLVE, None, None  # graphql-core's default resolver, called as it would
    if is_lean_resolver(resolve):
        return LEAN, None, resolve
    strawberry_field = (definition.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if (
        getattr(resolve, "_is_default", False)
        and isinstance(strawberry_field, StrawberryField)
        and strawberry_field.base_resolver is None
        and not strawberry_field.extensions
    ):
        # Strawberry's own resolver for such a field is getattr(source, python_name).
        return ATTRIBUTE, strawberry_field.python_name, None
    return RESOLVE, None, resolve


class Planner:
    """Builds the plans of one operation for one set of variable values (only their
    @skip/@include outcome matters: plans are shared across requests with the same)."""

    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: dict[str, FragmentDetails],
        operation: OperationDefinitionNode,
        variable_values: VariableValues,
        hide_suggestions: bool,
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.operation = operation
        self.variable_values = variable_values
        self.hide_suggestions = hide_suggestions

    def root(self) -> SelectionPlan:
        root_type = self.schema.query_type
        assert root_type is not None
        collected = collect_fields(
            self.schema,
            self.fragments,
            self.variable_values,
            root_type,
            self.operation,
            self.hide_suggestions,
        )
        return self._selection(root_type, collected.grouped_field_set)

    def subselection(self, type_: GraphQLObjectType, plan: FieldPlan) -> SelectionPlan:
        collected = collect_subfields(
            self.schema,
            self.fragments,
            self.variable_values,
            self.operation,
            type_,
            plan.details,
            self.hide_suggestions,
        )
        return self._selection(type_, collected.grouped_field_set)

    def _selection(self, type_: GraphQLObjectType, grouped: GroupedFieldSet) -> SelectionPlan:
        fields: list[FieldPlan] = []
        for key, details in grouped.items():
            node = details[0].node
            name = node.name.value
            definition = self.schema.get_field(type_, name)
            if definition is None:
                continue  # graphql-core skips unknown fields too (validation refuses them)
            nodes = [d.node for d in details]
            if name == "__typename":
                kind, attribute, resolve = TYPENAME, None, None
            else:
                kind, attribute, resolve = _reader(definition)
            plan = FieldPlan(
                relation=RELATIONS.get((type_.name, name)) if kind is LEAN else None,
                key=key,
                name=name,
                details=details,
                nodes=nodes,
                definition=definition,
                parent_type=type_,
                kind=kind,
                attribute=attribute,
                resolve=resolve,
                completion=completion_of(definition.type),
            )
            if definition.args or node.arguments:
                plan.has_args = True
                if all(_constant(a.value) for a in node.arguments or ()):
                    try:
                        plan.static_args = get_argument_values(
                            definition, node, self.variable_values, None, self.hide_suggestions
                        )
                    except GraphQLError as error:
                        plan.args_error = error
            fields.append(plan)
        return SelectionPlan(type_, fields)


def arguments(plan: FieldPlan, planner_values: VariableValues, hide_suggestions: bool) -> Any:
    """The field's coerced arguments for this request (constant ones computed once)."""
    if plan.static_args is not None:
        return plan.static_args
    if plan.args_error is not None:
        raise plan.args_error
    return get_argument_values(
        plan.definition, plan.nodes[0], planner_values, None, hide_suggestions
    )


def abstract_runtime_error(
    abstract: GraphQLAbstractType,
    plan: FieldPlan,
    runtime_type_name: Any,
    result: Any,
    schema: GraphQLSchema,
) -> GraphQLObjectType | GraphQLError:
    """The runtime object type `runtime_type_name` names, or graphql-core's error for it
    (`ensure_valid_runtime_type`, messages word for word)."""
    from graphql.pyutils import inspect

    where = f"{plan.parent_type}.{plan.name}"
    if runtime_type_name is None:
        return GraphQLError(
            f"Abstract type '{abstract}' must resolve to an Object type at runtime"
            f" for field '{where}'. Either the '{abstract}' type should provide"
            " a 'resolve_type' function or each possible type should provide"
            " an 'is_type_of' function.",
            plan.nodes,
        )
    if not isinstance(runtime_type_name, str):
        return GraphQLError(
            f"Abstract type '{abstract}' must resolve to an Object type at runtime"
            f" for field '{where}' with value {inspect(result)},"
            f" received '{inspect(runtime_type_name)}',"
            " which is not a valid Object type name.",
            plan.nodes,
        )
    runtime_type = schema.get_type(runtime_type_name)
    if runtime_type is None:
        return GraphQLError(
            f"Abstract type '{abstract}' was resolved to a type"
            f" '{runtime_type_name}' that does not exist inside the schema.",
            plan.nodes,
        )
    if not isinstance(runtime_type, GraphQLObjectType):
        return GraphQLError(
            f"Abstract type '{abstract}' was resolved to a non-object type '{runtime_type_name}'.",
            plan.nodes,
        )
    if not schema.is_sub_type(abstract, runtime_type):
        return GraphQLError(
            f"Runtime Object type '{runtime_type}' is not a possible type for '{abstract}'.",
            plan.nodes,
        )
    return runtime_type
