"""Runs GraphQL documents: parse and validate once per document, then execute.

We drive graphql-core directly instead of `strawberry.Schema.execute` because
the transport needs each phase apart: the HTTP status depends on where a
request failed (parse / validate / variables vs execution), and persisted
queries, cost limits and the result cache all hook in between the phases.
Strawberry still defines the schema and its resolvers.
"""

from __future__ import annotations

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

from schema.errors import BAD_USER_INPUT, GRAPHQL_PARSE_FAILED, GRAPHQL_VALIDATION_FAILED

MAX_CACHED_DOCUMENTS = 1000


class RequestError(Exception):
    """The request failed before execution: nothing ran."""

    def __init__(self, code: str, errors: list[GraphQLError]) -> None:
        super().__init__(errors[0].message if errors else code)
        self.code = code
        self.errors = errors


@dataclass(slots=True)
class Document:
    """A parsed document, identified by the SHA-256 of its text.

    Validation runs once per document; its outcome is kept here.
    """

    ast: DocumentNode
    sha256: str
    validation_errors: list[GraphQLError] | None = None

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
    """Parses, validates (cached by document text) and executes operations."""

    def __init__(self, schema: GraphQLSchema, *, cache_size: int = MAX_CACHED_DOCUMENTS) -> None:
        self.schema = schema
        self._cache_size = cache_size
        self._documents: OrderedDict[str, Document] = OrderedDict()

    def parse(self, query: str) -> Document:
        """The parsed document of `query` (cached); RequestError when it does not parse."""
        cached = self._documents.get(query)
        if cached is not None:
            self._documents.move_to_end(query)
            return cached
        try:
            ast = parse(query)
        except GraphQLError as error:
            raise RequestError(GRAPHQL_PARSE_FAILED, [error]) from None
        document = Document(ast, hashlib.sha256(query.encode()).hexdigest())
        self._documents[query] = document
        if len(self._documents) > self._cache_size:
            self._documents.popitem(last=False)
        return document

    def validate(self, document: Document) -> None:
        """RequestError when the document is not valid against the schema (checked once)."""
        if document.validation_errors is None:
            document.validation_errors = validate(self.schema, document.ast)
        if document.validation_errors:
            raise RequestError(GRAPHQL_VALIDATION_FAILED, document.validation_errors)

    def check_variables(
        self, operation: OperationDefinitionNode, variables: Mapping[str, Any] | None
    ) -> None:
        """Raises RequestError (BAD_USER_INPUT) when variables do not fit the operation."""
        coerced = get_variable_values(
            self.schema, operation.variable_definitions or (), dict(variables or {})
        )
        if isinstance(coerced, list):
            raise RequestError(BAD_USER_INPUT, coerced)

    async def execute(
        self,
        document: Document,
        *,
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
        )
        if is_awaitable(result):
            return await result  # type: ignore[no-any-return]
        assert isinstance(result, ExecutionResult)
        return result
