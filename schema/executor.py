"""Runs GraphQL documents: parse and validate once per document, then execute.

We drive graphql-core directly instead of `strawberry.Schema.execute` because
the transport needs each phase apart: the HTTP status depends on where a
request failed (parse / validate / variables vs execution), and persisted
queries, cost limits and the result cache all hook in between the phases.
Strawberry still defines the schema and its resolvers.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    ExecutionResult,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    execute,
    parse,
    validate,
)
from graphql.execution.values import get_variable_values
from graphql.pyutils import is_awaitable
from graphql.validation import (
    ASTValidationRule,
    MaxIntrospectionDepthRule,
    NoSchemaIntrospectionCustomRule,
    specified_rules,
)

from schema.errors import (
    BAD_USER_INPUT,
    GRAPHQL_PARSE_FAILED,
    GRAPHQL_VALIDATION_FAILED,
    QUERY_TIMEOUT,
)
from schema.input_values import (
    control_character_in_literals,
    control_character_in_variables,
    variables_too_deep,
)
from schema.limits import DocumentLimits, LimitViolation, check_limits, parser_limit_violation

MAX_CACHED_DOCUMENTS = 1000


class RequestError(Exception):
    """The request failed before execution: nothing ran."""

    def __init__(self, code: str, errors: list[GraphQLError]) -> None:
        super().__init__(errors[0].message if errors else code)
        self.code = code
        self.errors = errors


class QueryTimeout(Exception):
    """Execution ran past the executor's timeout and was cancelled; `result` says so."""

    def __init__(self, seconds: float) -> None:
        message = f"The query took longer than {seconds:g} s and was stopped."
        super().__init__(message)
        self.result = ExecutionResult(
            None, [GraphQLError(message, extensions={"code": QUERY_TIMEOUT})]
        )


@dataclass(slots=True)
class Document:
    """A parsed document, identified by the SHA-256 of its text.

    Validation, the document limits and the check of its literals run once per
    document; their outcome is kept here.
    """

    ast: DocumentNode
    sha256: str
    validation_errors: list[GraphQLError] | None = None
    limit_violation: LimitViolation | None = None
    literal_error: GraphQLError | None = None

    def operation(self, name: str | None) -> OperationDefinitionNode:
        operations = [d for d in self.ast.definitions if isinstance(d, OperationDefinitionNode)]
        if name is None:
            if len(operations) == 1:
                return operations[0]
            raise RequestError(
                GRAPHQL_VALIDATION_FAILED,
                [
                    GraphQLError(
                        "Must provide operation name if query contains multiple operations."
                    )
                ],
            )
        for operation in operations:
            if operation.name is not None and operation.name.value == name:
                return operation
        raise RequestError(
            GRAPHQL_VALIDATION_FAILED, [GraphQLError(f"Unknown operation named '{name}'.")]
        )


def is_mutation(operation: OperationDefinitionNode) -> bool:
    return operation.operation is not OperationType.QUERY


class Executor:
    """Parses, validates (cached by document text) and executes operations.

    `limits` bound every document before it runs; without `introspection`, schema
    introspection is refused and errors suggest no field names ("Did you mean ...");
    an execution running longer than `timeout` seconds is cancelled (QueryTimeout).
    """

    def __init__(
        self,
        schema: GraphQLSchema,
        *,
        cache_size: int = MAX_CACHED_DOCUMENTS,
        limits: DocumentLimits | None = None,
        introspection: bool = True,
        timeout: float | None = None,
    ) -> None:
        self.schema = schema
        self._cache_size = cache_size
        self._documents: OrderedDict[str, Document] = OrderedDict()
        self.limits = limits or DocumentLimits()
        self.hide_suggestions = not introspection
        self.timeout = timeout
        rules: list[type[ASTValidationRule]] = [*specified_rules, MaxIntrospectionDepthRule]
        if not introspection:
            rules.append(NoSchemaIntrospectionCustomRule)
        self._rules = tuple(rules)

    def parse(self, query: str) -> Document:
        """The parsed document of `query` (cached); RequestError when it does not parse."""
        cached = self._documents.get(query)
        if cached is not None:
            self._documents.move_to_end(query)
            return cached
        max_tokens = self.limits.max_tokens
        try:
            ast = parse(query, max_lexical_tokens=max_tokens, max_comments=max_tokens)
        except GraphQLError as error:
            violation = parser_limit_violation(error, self.limits)
            if violation is not None:
                raise RequestError(violation.code, [violation.error]) from None
            raise RequestError(GRAPHQL_PARSE_FAILED, [error]) from None
        document = Document(ast, hashlib.sha256(query.encode()).hexdigest())
        self._documents[query] = document
        if len(self._documents) > self._cache_size:
            self._documents.popitem(last=False)
        return document

    def validate(self, document: Document) -> None:
        """RequestError when the document is not valid against the schema, over a
        limit (QUERY_TOO_DEEP, QUERY_TOO_COMPLEX), or has a string literal with a
        control character (BAD_USER_INPUT); checked once per document."""
        if document.validation_errors is None:
            errors = validate(
                self.schema, document.ast, self._rules, hide_suggestions=self.hide_suggestions
            )
            if not errors:
                document.limit_violation = check_limits(document.ast, self.limits)
                document.literal_error = control_character_in_literals(document.ast)
            document.validation_errors = errors
        if document.validation_errors:
            raise RequestError(GRAPHQL_VALIDATION_FAILED, document.validation_errors)
        if document.limit_violation is not None:
            violation = document.limit_violation
            raise RequestError(violation.code, [violation.error])
        if document.literal_error is not None:
            raise RequestError(BAD_USER_INPUT, [document.literal_error])

    def check_variables(
        self, operation: OperationDefinitionNode, variables: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        """The variables coerced for the operation (defaults applied, `Int`s as ints);
        RequestError (BAD_USER_INPUT) when they do not fit it, when any variable sent
        (used or not) nests too deeply, or a string in one holds a control character."""
        too_deep = variables_too_deep(variables)
        if too_deep is not None:
            raise RequestError(BAD_USER_INPUT, [too_deep])
        definitions = operation.variable_definitions or ()
        coerced = get_variable_values(
            self.schema,
            definitions,
            dict(variables or {}),
            hide_suggestions=self.hide_suggestions,
        )
        if isinstance(coerced, list):
            raise RequestError(BAD_USER_INPUT, coerced)
        # The values as sent: their paths are the client's names, not Python's.
        names = (d.variable.name.value for d in definitions)
        control = control_character_in_variables(variables, names)
        if control is not None:
            raise RequestError(BAD_USER_INPUT, [control])
        return coerced.coerced

    async def execute(
        self,
        document: Document,
        *,
        operation_name: str | None,
        variables: Mapping[str, Any] | None,
        context: Any,
    ) -> ExecutionResult:
        """The operation's result; QueryTimeout when it ran out of time."""
        deadline = asyncio.timeout(self.timeout)
        try:
            async with deadline:
                return await self._execute(document, operation_name, variables, context)
        except TimeoutError:
            if self.timeout is None or not deadline.expired():
                raise
            raise QueryTimeout(self.timeout) from None

    async def _execute(
        self,
        document: Document,
        operation_name: str | None,
        variables: Mapping[str, Any] | None,
        context: Any,
    ) -> ExecutionResult:
        result = execute(
            self.schema,
            document.ast,
            context_value=context,
            variable_values=dict(variables or {}),
            operation_name=operation_name,
            hide_suggestions=self.hide_suggestions,
        )
        if is_awaitable(result):
            return await result  # type: ignore[no-any-return]
        assert isinstance(result, ExecutionResult)
        return result
