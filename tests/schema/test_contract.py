"""The served schema keeps every name, type and default of the public contract.

The contract lives beside the repository (`../shared/spec/schema.graphql`). A
clone with nothing beside it skips this test; CI, which always has it, fails
instead, so a moved or missing contract cannot pass unnoticed.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from graphql import build_schema, find_breaking_changes, find_dangerous_changes

from schema.build import create_schema

CONTRACT = Path(__file__).resolve().parents[3] / "shared" / "spec" / "schema.graphql"


@pytest.fixture
def contract() -> str:
    if not CONTRACT.is_file():
        message = f"the public contract is not beside the repository ({CONTRACT})"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return CONTRACT.read_text()


def test_served_schema_has_no_breaking_or_dangerous_change_against_the_contract(
    contract: str,
) -> None:
    served = create_schema()._schema
    expected = build_schema(contract)
    breaking = [f"{c.type.name}: {c.description}" for c in find_breaking_changes(expected, served)]
    dangerous = [
        f"{c.type.name}: {c.description}" for c in find_dangerous_changes(expected, served)
    ]
    assert breaking == []
    assert dangerous == []
