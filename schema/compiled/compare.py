"""Differential execution: the compiled result against graphql-core's, value for value.

With `GRAPHQL_EXECUTION=compare` every compiled query also runs through graphql-core,
on a fresh context of its own (new loaders, nothing cached, no metrics), and the two
results are compared as JSON: `data` byte for byte (key order included), `errors` as
the same set of (message, path, locations, extensions). The client gets the compiled
result; a difference is logged with both results and kept in `mismatches` (the test
suite runs in this mode and fails any test that leaves one behind).

The reference run's SQL is not the request's: `shadowing` is set while it runs, and
the statement counters skip what is sent under it.
"""

from __future__ import annotations

import logging
from collections import deque
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import orjson
from graphql import ExecutionResult

logger = logging.getLogger(__name__)

shadowing: ContextVar[bool] = ContextVar("storefront_shadow_execution", default=False)
"""True while the reference (graphql-core) run of a compared query executes."""

MAX_KEPT = 100


@dataclass(frozen=True, slots=True)
class Mismatch:
    """A query whose two executions disagreed."""

    query: str
    variables: dict[str, Any] | None
    compiled: str
    reference: str


mismatches: deque[Mismatch] = deque(maxlen=MAX_KEPT)


def as_json(result: ExecutionResult) -> tuple[bytes, list[bytes]]:
    """`data` as JSON bytes and the sorted JSON of each error."""
    data = orjson.dumps(result.data, option=orjson.OPT_NON_STR_KEYS)
    errors = sorted(
        orjson.dumps(error.formatted, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
        for error in result.errors or ()
    )
    return data, errors


def same(compiled: ExecutionResult, reference: ExecutionResult) -> bool:
    return as_json(compiled) == as_json(reference)


def describe(result: ExecutionResult) -> str:
    data, errors = as_json(result)
    return f"data={data.decode()} errors=[{', '.join(e.decode() for e in errors)}]"


def record(
    query: str,
    variables: dict[str, Any] | None,
    compiled: ExecutionResult,
    reference: ExecutionResult,
) -> None:
    mismatch = Mismatch(query, variables, describe(compiled), describe(reference))
    mismatches.append(mismatch)
    logger.error(
        "compiled execution differs from graphql-core: query=%r variables=%r "
        "compiled: %s reference: %s",
        query,
        variables,
        mismatch.compiled,
        mismatch.reference,
    )
