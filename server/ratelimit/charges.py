"""What an operation is charged: its actual cost, unless its answer may hide work."""

from __future__ import annotations

from typing import Any

from graphql import ExecutionResult, GraphQLError, OperationDefinitionNode

from resolvers.errors import Forbidden, Unauthenticated
from schema.cost import Price
from server.cache.cached_response import Served


def actual_cost(served: Served, requested: int) -> int:
    """What the answer cost: as run now, or as when it was stored."""
    if served.produced is not None:
        return int(served.produced.meta.get("actual", requested))
    if served.entry is not None:
        return int(served.entry.meta.get("actual", requested))
    return requested


def charged_cost(price: Price, result: ExecutionResult, operation: OperationDefinitionNode) -> int:
    """What a run is charged. With errors, what resolved before and beside them is not
    measured (null propagation may wipe it from the answer), so nothing is refunded: a
    failing sibling field must not make a query free. The exception is a request refused
    for who is asking (UNAUTHENTICATED, FORBIDDEN: raised before the field reads
    anything) where the answer hides nothing: it is charged what its answer holds."""
    if not result.errors:
        return price.plan.actual(result.data)
    if all(_refused_in_place(error, result.data, operation) for error in result.errors):
        return price.plan.actual(result.data)
    return price.requested


def _refused_in_place(
    error: GraphQLError, data: dict[str, Any] | None, operation: OperationDefinitionNode
) -> bool:
    """Whether `error` is a refusal whose null stayed where it was raised, so that the
    answer still holds everything that resolved beside it."""
    if not isinstance(error.original_error, (Unauthenticated, Forbidden)) or not error.path:
        return False
    if data is None:  # the null reached the root: only an operation of one field hides nothing
        return len(error.path) == 1 and len(operation.selection_set.selections) == 1
    parent: Any = data
    for step in error.path[:-1]:
        try:
            parent = parent[step]
        except (KeyError, IndexError, TypeError):
            return False
        if parent is None:
            return False
    return isinstance(parent, dict) and error.path[-1] in parent and parent[error.path[-1]] is None
