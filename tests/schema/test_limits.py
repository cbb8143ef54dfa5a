"""Document limits on a tiny schema: depth, aliases, directives, tokens, introspection."""

from __future__ import annotations

import pytest
from graphql import build_schema, get_introspection_query, parse

from schema.executor import Executor, RequestError
from schema.limits import DocumentLimits, check_limits

SCHEMA = build_schema(
    """
    type Query { node: Node, nodes: [Node!]! }
    type Node { name: String, child: Node }
    """
)
LIMITS = DocumentLimits(max_depth=4, max_aliases=3, max_directives=2, max_tokens=20)


def nested(levels: int) -> str:
    """A query `levels` fields deep: node { child { ... { name } } }."""
    return "{ node { " + "child { " * (levels - 2) + "name" + " }" * (levels - 2) + " } }"


def violation(query: str, limits: DocumentLimits = LIMITS) -> tuple[str, dict[str, object]] | None:
    found = check_limits(parse(query), limits)
    return None if found is None else (found.code, dict(found.error.extensions or {}))


def test_depth_boundary() -> None:
    assert violation(nested(4)) is None
    assert violation(nested(5)) == (
        "QUERY_TOO_DEEP",
        {"limit": "depth", "maximum": 4, "actual": 5},
    )


def test_depth_follows_fragments_however_nested() -> None:
    chain = (
        "{ node { ...A } } "
        "fragment A on Node { child { ...B } } "
        "fragment B on Node { ... on Node { child { ...C } } } "
        "fragment C on Node { child { name } }"
    )
    assert violation(chain) == ("QUERY_TOO_DEEP", {"limit": "depth", "maximum": 4, "actual": 5})


def test_introspection_does_not_count_toward_depth() -> None:
    assert violation(get_introspection_query(), DocumentLimits(max_tokens=10_000)) is None
    assert violation("{ node { child { child { __typename } } } }") is None


def test_aliases_boundary_and_fragments_count_per_spread() -> None:
    assert violation("{ a: node { name } b: node { name } c: nodes { name } }") is None
    assert violation("{ a: node { name } b: node { name } c: node { name } d: node { name } }") == (
        "QUERY_TOO_COMPLEX",
        {"limit": "aliases", "maximum": 3, "actual": 4},
    )
    spread_twice = "{ node { ...F ...F } } fragment F on Node { a: name b: name }"
    assert violation(spread_twice) == (
        "QUERY_TOO_COMPLEX",
        {"limit": "aliases", "maximum": 3, "actual": 4},
    )


def test_directives_boundary() -> None:
    two = "query Q($s: Boolean!) { node @include(if: $s) { name @skip(if: $s) } }"
    assert violation(two) is None
    three = "query Q($s: Boolean!) @a { node @include(if: $s) { name @skip(if: $s) } }"
    assert violation(three) == (
        "QUERY_TOO_COMPLEX",
        {"limit": "directives", "maximum": 2, "actual": 3},
    )


def test_fragments_spreading_each_other_twice_are_measured_in_linear_time() -> None:
    levels = 60  # 2**60 expansions if walked naively
    fragments = " ".join(
        f"fragment F{i} on Node {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels)
    )
    document = f"{{ node {{ ...F0 }} }} {fragments} fragment F{levels} on Node {{ x: name }}"
    found = violation(document, DocumentLimits(max_aliases=10**30))
    assert found is None
    found = violation(document, DocumentLimits(max_aliases=10))
    assert found is not None
    assert found[1]["actual"] == 2**levels


def test_tokens_boundary_stops_the_parser() -> None:
    executor = Executor(SCHEMA, limits=LIMITS)
    twenty = "{ node { " + "name " * 15 + "} }"  # { node { + 15 + } } = 20 tokens
    executor.parse(twenty)
    with pytest.raises(RequestError) as raised:
        executor.parse("{ node { " + "name " * 16 + "} }")
    assert raised.value.code == "QUERY_TOO_COMPLEX"
    assert raised.value.errors[0].extensions == {"limit": "tokens", "maximum": 20}


def test_a_plain_syntax_error_is_still_a_parse_failure() -> None:
    with pytest.raises(RequestError) as raised:
        Executor(SCHEMA, limits=LIMITS).parse("{ node {")
    assert raised.value.code == "GRAPHQL_PARSE_FAILED"


def test_executor_checks_limits_once_per_document() -> None:
    executor = Executor(SCHEMA, limits=LIMITS)
    document = executor.parse(nested(5))
    for _ in range(2):
        with pytest.raises(RequestError) as raised:
            executor.validate(document)
        assert raised.value.code == "QUERY_TOO_DEEP"
    assert document.limit_violation is not None


def test_without_introspection_it_is_refused_and_nothing_is_suggested() -> None:
    open_executor = Executor(SCHEMA)
    with pytest.raises(RequestError) as raised:
        open_executor.validate(open_executor.parse("{ node { nam } }"))
    assert "Did you mean" in raised.value.errors[0].message
    open_executor.validate(open_executor.parse("{ __schema { queryType { name } } }"))

    closed = Executor(SCHEMA, introspection=False)
    with pytest.raises(RequestError) as raised:
        closed.validate(closed.parse("{ node { nam } }"))
    assert "Did you mean" not in raised.value.errors[0].message
    with pytest.raises(RequestError) as raised:
        closed.validate(closed.parse("{ __schema { queryType { name } } }"))
    assert "introspection has been disabled" in raised.value.errors[0].message
    closed.validate(closed.parse("{ __typename node { __typename } }"))


def test_introspection_cycles_are_refused() -> None:
    executor = Executor(SCHEMA)
    cycle = "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }"
    with pytest.raises(RequestError) as raised:
        executor.validate(executor.parse(cycle))
    assert raised.value.code == "GRAPHQL_VALIDATION_FAILED"
