"""Differential property test: the compiled executor answers exactly as graphql-core.

Valid queries drawn from the served schema (tests/server/generated_queries.py: real
global ids of the `small` seed, boundary ints, cursors, control characters, merged
root fields under aliases, arguments as literals or as variables) run as anonymous,
customer and admin, each through both executors on a context of its own, and the
results are compared as JSON: `data` byte for byte, the same errors (message, path,
locations, extensions). Documents that do not validate are drawn again (they never
reach an executor). An error answer the compiled run hands to graphql-core (a null in
a non-null position) is graphql-core's own and is not compared: graphql-core's
choice of errors there depends on the timing of its tasks, run to run. Failures
hypothesis shrinks are kept as regular tests in test_compiled_regressions.py.

DIFFERENTIAL_EXAMPLES (default 2500) sets the valid documents per backend. Each
backend has a test function of its own, so hypothesis (derandomized: the seed is a
digest of the function's source) draws a different sequence for each: CI runs both
backends, 5,000 distinct documents and 15,000 compared executions per executor.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, assume, event, given, settings

from schema.compiled.compare import same
from tests.schema.differential_support import REFUSED, ROLES, Executors, compare, queries
from tests.server.generated_queries import Document

EXAMPLES = int(os.environ.get("DIFFERENTIAL_EXAMPLES", "2500"))


DIFFERENTIAL = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)


async def agree(executors: Executors, document: Document) -> None:
    outcomes = [await compare(executors, document, role) for role in ROLES]
    assume(REFUSED not in outcomes)  # a valid document: drawn again otherwise
    event("variables" if document[1] else "literals")
    for role, outcome in zip(ROLES, outcomes, strict=True):
        event(f"{role} {outcome}")


# One function per backend (not one parametrized function): a derandomized run seeds
# from the function's source, so the two backends draw different documents.
@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
@DIFFERENTIAL
@given(document=queries())
async def test_compiled_and_graphql_core_agree_on_sqlite(
    executors: Executors, document: Document
) -> None:
    await agree(executors, document)


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
@DIFFERENTIAL
@given(document=queries())
async def test_compiled_and_graphql_core_agree_on_postgresql(
    executors: Executors, document: Document
) -> None:
    await agree(executors, document)


async def test_a_difference_fails_the_comparison(executors: Executors) -> None:
    """The comparison can fail: a compiled result altered by one value differs."""
    from graphql import ExecutionResult

    query = "{ products(first: 2) { nodes { id name } } }"
    parsed = executors.compiled.parse(query)
    result = await executors.compiled.execute(
        parsed, operation_name=None, variables=None, context=executors.context("anonymous")
    )
    assert result.data is not None
    altered = ExecutionResult(
        {"products": {"nodes": [*result.data["products"]["nodes"][:1], None]}}, None
    )
    assert same(result, result)
    assert not same(altered, result)
    nodes = [dict(reversed(list(n.items()))) for n in result.data["products"]["nodes"]]
    reordered = ExecutionResult({"products": {"nodes": nodes}}, None)
    assert not same(reordered, result)  # key order is part of the answer
