"""The one document cache: bounded, one parse/validate/plan per document for the
executor, the cost analysis and the cache policies, refusals cached too."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from graphql import GraphQLSchema

import schema.cache_policy
import schema.cost
import schema.executor
from schema import create_schema
from schema.cache_policy import CachePolicies, CachePolicy
from schema.cost import CostAnalysis
from schema.executor import Executor, RequestError

TWO_OPERATIONS = """
query Shelf { categories { ...Named } }
query Page($n: Int) { products(first: $n) { totalCount nodes { ...Priced } } }
fragment Named on Category { name }
fragment Priced on Product { name priceCents }
"""


@pytest.fixture(scope="module")
def graphql_schema() -> GraphQLSchema:
    return create_schema()._schema


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts the expensive steps: parse, validate, the cost compiler, the policy walk."""
    counts = {"parse": 0, "validate": 0, "compile": 0, "walk": 0}

    def counted(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            counts[name] += 1
            return function(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(schema.executor, "parse", counted("parse", schema.executor.parse))
    monkeypatch.setattr(schema.executor, "validate", counted("validate", schema.executor.validate))
    compiler = schema.cost._Compiler
    monkeypatch.setattr(compiler, "operation", counted("compile", compiler.operation))
    walk = schema.cache_policy._Walk
    monkeypatch.setattr(walk, "selection_set", counted("walk", walk.selection_set))
    return counts


def _request(
    executor: Executor,
    costs: CostAnalysis,
    policies: CachePolicies,
    text: str,
    name: str | None,
    variables: dict[str, Any] | None = None,
) -> tuple[int, CachePolicy]:
    """What the pipeline does for one request before executing it."""
    document = executor.parse(text)
    executor.validate(document)
    operation = document.operation(name)
    coerced = executor.check_variables(operation, variables)
    price = costs.price(document, operation, coerced)
    return price.requested, policies.policy(document, operation, coerced)


def test_each_document_is_parsed_validated_and_planned_once(
    graphql_schema: GraphQLSchema, calls: dict[str, int]
) -> None:
    executor = Executor(graphql_schema)
    costs, policies = CostAnalysis(graphql_schema), CachePolicies(graphql_schema)
    text = "{ products(first: 5) { nodes { name } } }"

    answers = {_request(executor, costs, policies, text, None) for _ in range(5)}

    assert len(answers) == 1
    walks_of_one_plan = calls["walk"]  # the walk recurses: count one plan's calls
    assert calls["parse"] == calls["validate"] == calls["compile"] == 1
    _request(executor, costs, policies, text, None)
    assert calls["walk"] == walks_of_one_plan
    assert calls["parse"] == calls["validate"] == calls["compile"] == 1
    assert len(executor.documents) == 1


def test_operations_of_one_document_have_plans_of_their_own(
    graphql_schema: GraphQLSchema, calls: dict[str, int]
) -> None:
    executor = Executor(graphql_schema)
    costs, policies = CostAnalysis(graphql_schema), CachePolicies(graphql_schema)

    shelf = _request(executor, costs, policies, TWO_OPERATIONS, "Shelf")
    page = _request(executor, costs, policies, TWO_OPERATIONS, "Page", {"n": 3})
    assert _request(executor, costs, policies, TWO_OPERATIONS, "Shelf") == shelf
    assert _request(executor, costs, policies, TWO_OPERATIONS, "Page", {"n": 30})[0] > page[0]

    assert calls["parse"] == calls["validate"] == 1
    assert calls["compile"] == 2  # one per operation, not per request
    document = executor.parse(TWO_OPERATIONS)
    assert set(document.plans) == {
        (costs, "Shelf"),
        (costs, "Page"),
        (policies, "Shelf"),
        (policies, "Page"),
    }
    assert shelf[1] != page[1]  # categories keep an hour, products five minutes


def test_the_fragment_map_is_built_once_and_shared(
    graphql_schema: GraphQLSchema, monkeypatch: pytest.MonkeyPatch
) -> None:
    executor = Executor(graphql_schema)
    document = executor.parse(TWO_OPERATIONS)
    seen: list[object] = []
    limits = schema.executor.check_limits

    def check_limits(*args: Any, fragments: Any = None, **kwargs: Any) -> Any:
        seen.append(fragments)
        return limits(*args, fragments=fragments, **kwargs)

    monkeypatch.setattr(schema.executor, "check_limits", check_limits)
    executor.validate(document)

    assert set(document.fragments) == {"Named", "Priced"}
    assert seen == [document.fragments]
    assert seen[0] is document.fragments
    compiler = schema.cost._Compiler(CostAnalysis(graphql_schema), document)
    assert compiler.fragments is document.fragments


def test_the_cache_is_a_bounded_lru(graphql_schema: GraphQLSchema, calls: dict[str, int]) -> None:
    executor = Executor(graphql_schema, cache_size=2)
    first = executor.parse("{ categories { name } }")
    second = executor.parse("{ categories { id } }")
    assert executor.parse("{ categories { name } }") is first  # now the most recent
    executor.parse("{ categories { slug } }")  # evicts `second`, the least recent

    assert len(executor.documents) == 2
    assert executor.parse("{ categories { name } }") is first
    assert executor.parse("{ categories { id } }") is not second
    assert calls["parse"] == 4


def test_a_cache_of_size_zero_keeps_nothing(graphql_schema: GraphQLSchema) -> None:
    executor = Executor(graphql_schema, cache_size=0)
    document = executor.parse("{ categories { name } }")

    assert executor.parse("{ categories { name } }") is not document
    assert len(executor.documents) == 0


def test_an_invalid_document_is_cached_as_invalid(
    graphql_schema: GraphQLSchema, calls: dict[str, int]
) -> None:
    executor = Executor(graphql_schema)
    for _ in range(3):
        document = executor.parse("{ categories { nope } }")
        with pytest.raises(RequestError) as raised:
            executor.validate(document)
        assert raised.value.code == "GRAPHQL_VALIDATION_FAILED"

    assert calls["parse"] == calls["validate"] == 1


def test_a_document_that_does_not_parse_is_refused_from_the_cache(
    graphql_schema: GraphQLSchema, calls: dict[str, int]
) -> None:
    executor = Executor(graphql_schema)
    refusals = []
    for _ in range(3):
        with pytest.raises(RequestError) as raised:
            executor.parse("{ categories {")
        refusals.append(raised.value)

    assert calls["parse"] == 1
    assert {r.code for r in refusals} == {"GRAPHQL_PARSE_FAILED"}
    assert len({id(r) for r in refusals}) == 3  # a fresh exception each time
    assert refusals[0].errors[0].message == refusals[2].errors[0].message


def test_analyses_with_different_tables_do_not_share_plans(graphql_schema: GraphQLSchema) -> None:
    executor = Executor(graphql_schema)
    document = executor.parse("{ categories { name } }")
    executor.validate(document)
    operation = document.operation(None)
    cheap = CostAnalysis(graphql_schema)
    dear = CostAnalysis(graphql_schema, costs={"Query.categories": schema.cost.Cost(size=500)})

    assert cheap.plan(document, operation) is not dear.plan(document, operation)
    assert dear.plan(document, operation).requested({}) > cheap.plan(document, operation).requested(
        {}
    )
