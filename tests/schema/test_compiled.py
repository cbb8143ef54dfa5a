"""The compiled executor's bookkeeping: which documents it takes, where plans live,
and how many it keeps. (That its answers are graphql-core's is the differential tests'
job: test_compiled_differential.py, and every query of the suite in compare mode.)"""

from __future__ import annotations

import logging

import pytest

from schema.compiled import CompiledQueries, _Compiled
from schema.compiled.plan import MAX_VARIANTS, unsupported_reason
from tests.schema.differential_support import Executors


def _entry(executors: Executors, query: str) -> object:
    executor = executors.compiled
    document = executor.parse(query)
    return document.plans.get((executor.compiled, None))


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("{ products { nodes { id } } }", None),
        ('mutation { cancelOrder(id: "x") { id } }', "mutation operation"),
        ("{ __schema { queryType { name } } }", "introspection"),
        ('{ __type(name: "Product") { name } }', "introspection"),
        ("{ categories @include(if: true) { name } }", None),
        ("{ categories @deprecated { name } }", "@deprecated"),
    ],
)
def test_what_runs_compiled(executors: Executors, query: str, reason: str | None) -> None:
    document = executors.compiled.parse(query)
    operation = document.operation(None)
    assert unsupported_reason(document.ast, operation) == reason


async def test_a_plan_is_compiled_once_and_kept_with_its_document(
    executors: Executors, caplog: pytest.LogCaptureFixture
) -> None:
    query = "{ categories { name children { name } } }"
    executor = executors.compiled
    for _ in range(2):
        document = executor.parse(query)
        await executor.execute(
            document, operation_name=None, variables=None, context=executors.context("anonymous")
        )
    entry = _entry(executors, query)
    assert isinstance(entry, _Compiled)
    assert len(entry.variants) == 1
    (plan,) = entry.variants.values()
    children = next(f for f in plan.root.fields if f.key == "categories")
    # The sub-selection was planned on first use and is the same object afterwards.
    assert children.completion.inner is not None
    assert children.completion.inner.selection is not None


async def test_a_document_not_compiled_runs_on_graphql_core_logged_once(
    executors: Executors, caplog: pytest.LogCaptureFixture
) -> None:
    query = '{ __type(name: "Product") { name } }'
    executor = executors.compiled
    with caplog.at_level(logging.DEBUG, logger="schema.compiled"):
        for _ in range(3):
            document = executor.parse(query)
            result = await executor.execute(
                document,
                operation_name=None,
                variables=None,
                context=executors.context("anonymous"),
            )
            assert result.data == {"__type": {"name": "Product"}}
    lines = [r for r in caplog.records if "runs on graphql-core: introspection" in r.message]
    assert len(lines) == 1


async def test_plans_per_operation_are_bounded(executors: Executors) -> None:
    """One plan per outcome of the @include variables, at most MAX_VARIANTS kept."""
    names = [f"v{i}" for i in range(5)]  # 32 outcomes
    header = ", ".join(f"${n}: Boolean!" for n in names)
    body = " ".join(f"c{i}: categories @include(if: ${n}) {{ name }}" for i, n in enumerate(names))
    query = f"query({header}) {{ {body} }}"
    executor = executors.compiled
    for outcome in range(2 ** len(names)):
        variables = {n: bool(outcome >> i & 1) for i, n in enumerate(names)}
        document = executor.parse(query)
        result = await executor.execute(
            document,
            operation_name=None,
            variables=variables,
            context=executors.context("anonymous"),
        )
        assert result.errors is None
        assert set(result.data or {}) == {f"c{i}" for i, n in enumerate(names) if variables[n]}
    entry = _entry(executors, query)
    assert isinstance(entry, _Compiled)
    assert len(entry.variants) == MAX_VARIANTS


def test_plans_belong_to_their_compiler(executors: Executors) -> None:
    """Two executors never share a plan (keys carry the compiler)."""
    assert isinstance(executors.compiled.compiled, CompiledQueries)
    assert executors.compiled.compiled is not executors.reference.compiled
