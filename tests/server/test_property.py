"""Property test: no query drawn from the served schema breaks the server, for any viewer.

Each example is one generated document (tests/server/generated_queries.py),
sent through the real HTTP endpoint of an app over the `small` seed as an
anonymous client, a customer and an admin, with the result cache on (the
default) and buckets too large to get in the way. Every answer is JSON with a
status below 500 and no INTERNAL_SERVER_ERROR; limits may refuse a document,
with their own code. Failures hypothesis shrinks are kept as regular tests in
test_property_regressions.py.

`pytest --hypothesis-show-statistics` prints what the run covered: root
fields, error codes and statuses seen.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import graphql
import pytest_asyncio
from hypothesis import HealthCheck, event, given, settings

from schema import create_schema
from server.cli.seed import seed
from tests.conftest import Api, Database
from tests.server.apps import serve
from tests.server.generated_queries import Document, documents

# 3 requests per example: 700 examples send 2,100 queries per backend.
EXAMPLES = int(os.environ.get("PROPERTY_EXAMPLES", "700"))
SCHEMA = create_schema()._schema
ROLES = ("anonymous", "customer", "admin")
# Buckets that a whole run cannot drain: the limiter still runs, but never refuses.
UNLIMITED = {
    "RATE_LIMIT_MAXIMUM": str(10**9),
    "RATE_LIMIT_RESTORE_RATE": str(10**9),
    "ADMIN_RATE_LIMIT_MAXIMUM": str(10**9),
    "ADMIN_RATE_LIMIT_RESTORE_RATE": str(10**9),
}


@dataclass
class Served:
    api: Api
    tokens: dict[str, str | None]


@pytest_asyncio.fixture
async def served(db: Database) -> AsyncIterator[Served]:
    """The app over the `small` seed with the cache on, and a token per role."""
    await seed(engine=db.engine, scale="small")
    async with serve(db, CACHE_ENABLED="true", **UNLIMITED) as api:
        tokens = {
            "anonymous": None,
            "customer": await api.token("customer@example.com"),
            "admin": await api.token("admin@example.com"),
        }
        yield Served(api, tokens)


async def send(api: Api, document: Document, role: str, token: str | None) -> Any:
    """POST `document`; an exception out of the app is a failure like a 500."""
    query, variables = document
    try:
        return await api.post(query, variables, token=token)
    except BaseException as error:  # a 500 in a real server (CancelledError included)
        raise AssertionError(f"{role}: the app raised {error!r}") from error


def check(response: Any, role: str) -> list[dict[str, Any]]:
    """Assert the answer is a well-formed client- or success-answer; return its errors."""
    assert response.status_code < 500, f"{role}: HTTP {response.status_code}: {response.text}"
    try:
        body = response.json()
    except ValueError:
        raise AssertionError(f"{role}: not JSON: {response.text[:500]!r}") from None
    assert isinstance(body, dict), f"{role}: {body!r}"
    errors: list[dict[str, Any]] = body.get("errors") or []
    codes = [(error.get("extensions") or {}).get("code") for error in errors]
    assert "INTERNAL_SERVER_ERROR" not in codes, f"{role}: {errors}"
    return errors


def record(document: Document, role: str, status: int, errors: list[dict[str, Any]]) -> None:
    """Coverage figures for --hypothesis-show-statistics."""
    query, variables = document
    event(f"status {status}")
    event("with errors" if errors else "no errors")
    for error in errors:
        event(f"code {(error.get('extensions') or {}).get('code')}")
    if role == "anonymous":
        event("variables" if variables else "literals")
        try:
            operation = graphql.parse(query).definitions[0]
        except graphql.GraphQLError:
            return
        if isinstance(operation, graphql.OperationDefinitionNode):
            for selection in operation.selection_set.selections:
                if isinstance(selection, graphql.FieldNode):
                    event(f"root {selection.name.value}")


@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(document=documents(SCHEMA))
async def test_generated_queries_never_fail_the_server(served: Served, document: Document) -> None:
    for role in ROLES:
        response = await send(served.api, document, role, served.tokens[role])
        errors = check(response, role)
        record(document, role, response.status_code, errors)
