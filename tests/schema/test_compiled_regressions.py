"""Cases the differential property test shrank, kept as regular tests.

Each is run as anonymous, customer and admin on both executors over the `small`
seed, and the results must be identical (test_compiled_differential.py's `compare`).
All are about timing: which errors a null bubbling up hides depends on the order
in which graphql-core's depth-first tasks fail (two runs of graphql-core itself can
differ on the twin branches). The compiled executor hands such operations to
graphql-core (schema/compiled/run.py, `Propagation`).
"""

from __future__ import annotations

import pytest

from tests.schema.differential_support import HANDED_OVER, REFUSED, ROLES, Executors, compare

CASES = {
    # A slow non-null failure (after a query) and an instant nullable one: both kept.
    "slow root null, instant sibling error": """{
      q0_0_products: products(first: 0, after: "", filter: { active: false }, sort: NEWEST) {
        totalCount
      }
      q1_0_order: order(id: "Q2F0ZWdvcnk6MQ") { createdAt }
    }""",
    # Both fail at once (before any query): the sibling's error lands before the null.
    "instant root null, instant sibling error": """{
      q0_0_users: users(first: 0, after: "") { totalCount }
      q1_0_order: order(id: "Q2F0ZWdvcnk6MQ") { createdAt }
    }""",
    # The sibling fails only after loading its order: the root is null by then, and
    # its error is dropped.
    "instant root null, slow sibling error": """{
      q0_0_users: users(first: 0, after: null) { totalCount }
      q1_0_order: order(id: "T3JkZXI6MQ") { createdAt }
    }""",
    # Two identical branches both null the root from a nested connection: graphql-core
    # reports the second's error (found by the HTTP property test in compare mode).
    "twin branches null the root": """{
      q0_0_categories: categories {
        parent { name }
        products(first: 5, after: "") { nodes { active updatedAt } }
      }
      q1_0_categories: categories {
        parent { name }
        products(first: 5, after: "") { nodes { active updatedAt } }
      }
    }""",
}


@pytest.mark.parametrize("query", CASES.values(), ids=CASES.keys())
async def test_shrunk_case_is_graphql_cores_answer(executors: Executors, query: str) -> None:
    """Each is an error answer whose nulls reach the root: the compiled run hands it
    to graphql-core (and where a role's answer is compiled, it agrees)."""
    outcomes = [await compare(executors, (query, None), role) for role in ROLES]
    assert REFUSED not in outcomes
    assert HANDED_OVER in outcomes
