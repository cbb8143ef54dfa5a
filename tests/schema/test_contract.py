"""The served schema keeps every name, type and default of the public contract."""

from __future__ import annotations

from pathlib import Path

from graphql import build_schema, find_breaking_changes, find_dangerous_changes

from schema.build import create_schema

CONTRACT = Path(__file__).resolve().parents[3] / "shared" / "spec" / "schema.graphql"


def test_contract_file_is_beside_the_repo() -> None:
    assert CONTRACT.is_file(), f"the public contract is expected at {CONTRACT}"


def test_served_schema_has_no_breaking_or_dangerous_change_against_the_contract() -> None:
    contract = build_schema(CONTRACT.read_text())
    served = create_schema()._schema
    breaking = [f"{c.type.name}: {c.description}" for c in find_breaking_changes(contract, served)]
    dangerous = [
        f"{c.type.name}: {c.description}" for c in find_dangerous_changes(contract, served)
    ]
    assert breaking == []
    assert dangerous == []
