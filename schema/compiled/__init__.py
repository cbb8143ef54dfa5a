"""The compiled query executor: plans made once per document, run level by level.

No maintained Python library does this: graphql-core (like graphql-js) interprets
the document for every object of every request, and graphql-jit, which compiles
queries for graphql-js, has no Python counterpart; Strawberry executes through
graphql-core. So the plan (schema/compiled/plan.py) is ours, built with graphql-core's
own field collection, and so is the breadth-first runner (schema/compiled/run.py).

What the compiler does not handle runs through graphql-core unchanged: mutations
and subscriptions, introspection, and directives other than @skip/@include
(@defer/@stream later). The decision is made once per document and operation,
logged once at debug.

Results are graphql-core's, value for value: the differential tests run every query
of the test suite through both executors and compare them (`schema.compiled.compare`).
An operation whose errors null a non-null position (an error answer) is answered by
graphql-core (schema/compiled/run.py says why), on the same context: what the
compiled run loaded is still in the loaders.

Example:
    compiled = CompiledQueries(schema)
    result = await compiled.execute(document, operation, core_executor)  # or None: not compiled
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from graphql import ExecutionResult, GraphQLSchema, OperationDefinitionNode
from graphql.execution.executor import Executor as CoreExecutor

from schema.analysis import Document
from schema.compiled.plan import (
    MAX_VARIANTS,
    OperationPlan,
    Planner,
    condition_variables,
    unsupported_reason,
)
from schema.compiled.run import Propagation, Run

__all__ = ["CompiledQueries"]

logger = logging.getLogger(__name__)


@dataclass(slots=True, eq=False)
class _Compiled:
    """An operation's plans, one per outcome of its @skip/@include variables."""

    conditions: tuple[str, ...]
    variants: dict[tuple[Any, ...], OperationPlan] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _NotCompiled:
    reason: str


class CompiledQueries:
    """Compiles query operations on first use and runs them; plans live in the
    document's entry of the analysis cache (bounded with it)."""

    def __init__(self, schema: GraphQLSchema, *, hide_suggestions: bool = False) -> None:
        self.schema = schema
        self.hide_suggestions = hide_suggestions

    def compiled(self, document: Document, operation: OperationDefinitionNode) -> bool:
        """Whether `operation` of `document` runs compiled."""
        return isinstance(self._entry(document, operation), _Compiled)

    def _entry(
        self, document: Document, operation: OperationDefinitionNode
    ) -> _Compiled | _NotCompiled:
        name = operation.name.value if operation.name else None
        key = (self, name)
        entry = document.plans.get(key)
        if entry is None:
            reason = unsupported_reason(document.ast, operation)
            if reason is None:
                entry = _Compiled(condition_variables(document.ast))
            else:
                entry = _NotCompiled(reason)
                logger.debug("document %s runs on graphql-core: %s", document.sha256[:12], reason)
            document.plans[key] = entry
        assert isinstance(entry, _Compiled | _NotCompiled)
        return entry

    async def execute(
        self, document: Document, operation: OperationDefinitionNode, core: CoreExecutor[Any]
    ) -> ExecutionResult | None:
        """Runs `operation` compiled with the request's graphql-core executor state
        (variables, fragments, context); None when it is not compiled."""
        entry = self._entry(document, operation)
        if not isinstance(entry, _Compiled):
            return None
        values = core.variable_values
        planner = Planner(self.schema, core.fragments, operation, values, self.hide_suggestions)
        signature = tuple(values.coerced.get(name) for name in entry.conditions)
        plan = entry.variants.get(signature)
        if plan is None:
            plan = OperationPlan(planner.root())
            if len(entry.variants) < MAX_VARIANTS:
                entry.variants[signature] = plan
        try:
            return await Run(core, planner, plan.root).run()
        except Propagation as propagation:
            logger.debug(
                "document %s runs again on graphql-core: %s", document.sha256[:12], propagation
            )
            return None
