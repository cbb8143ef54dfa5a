"""Runs GraphQL documents: parse and validate once per document, then execute.

Queries run on the compiled executor (schema/compiled) unless `execution` says
otherwise; what it does not compile, and every mutation, runs on graphql-core.
`execution="compare"` runs compiled queries on both and reports any difference
(schema/compiled/compare.py): the test suite runs that way.

We drive graphql-core directly instead of `strawberry.Schema.execute` because
the transport needs each phase apart: the HTTP status depends on where a
request failed (parse / validate / variables vs execution), and persisted
queries, cost limits and the result cache all hook in between the phases.
Strawberry still defines the schema and its resolvers.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Mapping
from typing import Any, Literal

from graphql import (
    ExecutionHooks,
    ExecutionResult,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    execute,
    parse,
    print_ast,
    validate,
)
from graphql.execution.incremental.incremental_executor import IncrementalExecutor
from graphql.execution.values import get_variable_values
from graphql.pyutils import is_awaitable
from graphql.validation import (
    ASTValidationRule,
    MaxIntrospectionDepthRule,
    NoSchemaIntrospectionCustomRule,
    specified_rules,
)

from schema.analysis import MAX_CACHED_DOCUMENTS, Document, DocumentCache, Refusal, RequestError
from schema.compiled import CompiledQueries, compare
from schema.cycles import FINISHED, drop_tracebacks, release_executor
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
from schema.limits import DocumentLimits, check_limits, parser_limit_violation

Execution = Literal["compiled", "graphql-core", "compare"]
EXECUTIONS: tuple[Execution, ...] = ("compiled", "graphql-core", "compare")

__all__ = [
    "EXECUTIONS",
    "MAX_CACHED_DOCUMENTS",
    "Document",
    "Executor",
    "QueryTimeout",
    "RequestError",
    "is_mutation",
]


class QueryTimeout(Exception):
    """Execution ran past the executor's timeout and was cancelled; `result` says so."""

    def __init__(self, seconds: float) -> None:
        message = f"The query took longer than {seconds:g} s and was stopped."
        super().__init__(message)
        self.result = ExecutionResult(
            None, [GraphQLError(message, extensions={"code": QUERY_TIMEOUT})]
        )


# No reference cycle outlives an operation (schema/cycles.py).
_RELEASE = ExecutionHooks(async_work_finished=release_executor)


def is_mutation(operation: OperationDefinitionNode) -> bool:
    return operation.operation is not OperationType.QUERY


class Executor:
    """Parses, validates (cached by document text) and executes operations.

    Parsed documents and their analysis are kept in `documents`, a bounded LRU
    (`cache_size` entries when none is given).

    `limits` bound every document before it runs; without `introspection`, schema
    introspection is refused and errors suggest no field names ("Did you mean ...");
    an execution running longer than `timeout` seconds is cancelled (QueryTimeout).

    `execution` picks the executor of queries: "compiled" (graphql-core for what it
    does not compile), "graphql-core", or "compare" (both). `fresh_context` gives a
    second run of an operation a context of its own (the reference run of "compare",
    and graphql-core's run of an error answer the compiled run gave up).
    """

    def __init__(
        self,
        schema: GraphQLSchema,
        *,
        cache_size: int = MAX_CACHED_DOCUMENTS,
        limits: DocumentLimits | None = None,
        introspection: bool = True,
        timeout: float | None = None,
        execution: Execution = "compiled",
        fresh_context: Callable[[Any], Any] | None = None,
    ) -> None:
        if execution not in EXECUTIONS:
            raise ValueError(f"execution must be one of {', '.join(EXECUTIONS)}")
        if execution == "compare" and fresh_context is None:
            raise ValueError("execution='compare' needs fresh_context")
        self.schema = schema
        self.execution = execution
        self.fresh_context = fresh_context
        self.compiled = CompiledQueries(schema, hide_suggestions=not introspection)
        # Every analysis of a document (validation, limits, cost and cache-policy
        # plans) lives in its entry here: one cache, one eviction.
        # Validation depends on this executor's schema, rules and limits: the cache is its own.
        self.documents = DocumentCache(cache_size)
        self.limits = limits or DocumentLimits()
        self.hide_suggestions = not introspection
        self.timeout = timeout
        rules: list[type[ASTValidationRule]] = [*specified_rules, MaxIntrospectionDepthRule]
        if not introspection:
            rules.append(NoSchemaIntrospectionCustomRule)
        self._rules = tuple(rules)

    def parse(self, query: str) -> Document:
        """The parsed document of `query` (cached); RequestError when it does not parse
        (the refusal is cached too)."""
        entry = self.documents.get(query)
        if entry is None:
            entry = self._parse(query)
            self.documents.put(query, entry)
        if isinstance(entry, Refusal):
            raise entry.error()
        return entry

    def _parse(self, query: str) -> Document | Refusal:
        max_tokens = self.limits.max_tokens
        try:
            ast = parse(query, max_lexical_tokens=max_tokens, max_comments=max_tokens)
        except GraphQLError as error:
            violation = parser_limit_violation(error, self.limits)
            if violation is not None:
                return Refusal(violation.code, (violation.error,))
            return Refusal(GRAPHQL_PARSE_FAILED, (error,))
        return Document(ast, hashlib.sha256(query.encode()).hexdigest())

    def validate(self, document: Document) -> None:
        """RequestError when the document is not valid against the schema, over a
        limit (QUERY_TOO_DEEP, QUERY_TOO_COMPLEX), or has a string literal with a
        control character (BAD_USER_INPUT); checked once per document."""
        if document.validation_errors is None:
            errors = validate(
                self.schema, document.ast, self._rules, hide_suggestions=self.hide_suggestions
            )
            if not errors:
                document.limit_violation = check_limits(
                    document.ast, self.limits, fragments=document.fragments
                )
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
            drop_tracebacks(coerced)  # their frames hold the list: a cycle per request
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
        if self.execution == "graphql-core":
            return await self._reference(document, operation_name, variables, context)
        result = await self.execute_compiled(document, operation_name, variables, context)
        if result is None:  # not compiled, or an error answer graphql-core must give
            operation = document.operation(operation_name)
            if self.fresh_context is not None and self.compiled.compiled(document, operation):
                # As if alone: graphql-core's error answers depend on what its loaders
                # already hold (the timing of its tasks does).
                context = self.fresh_context(context)
            return await self._reference(document, operation_name, variables, context)
        if self.execution == "compare":
            await self._compare(document, operation_name, variables, context, result)
        return result

    async def execute_compiled(
        self,
        document: Document,
        operation_name: str | None,
        variables: Mapping[str, Any] | None,
        context: Any,
    ) -> ExecutionResult | None:
        """The operation's result from the compiled executor; None when it is not
        compiled or is an error answer graphql-core must give (schema/compiled)."""
        core = IncrementalExecutor.build(
            self.schema,
            document.ast,
            None,
            context,
            dict(variables or {}),
            operation_name,
            hide_suggestions=self.hide_suggestions,
        )
        if isinstance(core, list):
            return ExecutionResult(None, errors=core)
        try:
            result = await self.compiled.execute(document, core.operation, core)
        finally:
            core.async_helpers = FINISHED  # its bound methods: a cycle (schema/cycles.py)
        if result is not None:
            drop_tracebacks(result.errors or (), expected_only=True)
        return result

    async def _compare(
        self,
        document: Document,
        operation_name: str | None,
        variables: Mapping[str, Any] | None,
        context: Any,
        result: ExecutionResult,
    ) -> None:
        assert self.fresh_context is not None
        token = compare.shadowing.set(True)
        try:
            reference = await self._reference(
                document, operation_name, variables, self.fresh_context(context)
            )
        finally:
            compare.shadowing.reset(token)
        if not compare.same(result, reference):
            query = print_ast(document.ast)
            compare.record(query, dict(variables or {}), result, reference)

    async def _reference(
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
            hooks=_RELEASE,
        )
        if is_awaitable(result):
            result = await result
        assert isinstance(result, ExecutionResult)
        drop_tracebacks(result.errors or (), expected_only=True)
        return result
