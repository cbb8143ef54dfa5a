"""The served schema keeps every name, type and default of the public contract.

The contract lives beside the repository (`../shared/spec/schema.graphql`). A
clone with nothing beside it skips this test; CI, which always has it, fails
instead, so a moved or missing contract cannot pass unnoticed.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from graphql import (
    DocumentNode,
    build_schema,
    find_breaking_changes,
    find_dangerous_changes,
    parse,
    print_ast,
)

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


EVENTS_CONTRACT = CONTRACT.with_name("events.graphql")
# Built by the live-data issue, not yet served: left out of the comparison.
_NOT_YET_SERVED = {"Subscription", "defer", "stream"}


@pytest.fixture
def events_contract(contract: str) -> str:
    if not EVENTS_CONTRACT.is_file():
        message = f"the events contract is not beside the repository ({EVENTS_CONTRACT})"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    document = parse(EVENTS_CONTRACT.read_text())
    kept = [
        definition
        for definition in document.definitions
        if getattr(getattr(definition, "name", None), "value", None) not in _NOT_YET_SERVED
    ]
    assert len(kept) == len(document.definitions) - len(_NOT_YET_SERVED)
    return contract + "\n" + print_ast(DocumentNode(definitions=tuple(kept)))


def test_served_schema_has_the_webhook_parts_of_the_events_contract(events_contract: str) -> None:
    served = create_schema()._schema
    expected = build_schema(events_contract)
    breaking = [f"{c.type.name}: {c.description}" for c in find_breaking_changes(expected, served)]
    dangerous = [
        f"{c.type.name}: {c.description}" for c in find_dangerous_changes(expected, served)
    ]
    assert breaking == []
    assert dangerous == []
    for name in ("Webhook", "WebhookDelivery", "WebhookEvent", "CreateWebhookPayload"):
        assert served.get_type(name) is not None, name
