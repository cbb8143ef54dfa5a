"""Differential property test: the compiled executor answers exactly as graphql-core.

Valid queries drawn from the served schema (tests/server/generated_queries.py: real
global ids of the `small` seed, boundary ints, cursors, control characters, merged
root fields under aliases, arguments as literals or as variables) run as anonymous,
customer and admin, each through both executors on a context of its own, and the
results are compared as JSON: `data` byte for byte, the same errors (message, path,
locations, extensions). Documents that do not validate are drawn again (they never
reach an executor). Failures hypothesis shrinks are kept as regular tests in
test_compiled_regressions.py.

DIFFERENTIAL_EXAMPLES (default 1700) sets the documents per backend: CI runs both
backends, 3,400 documents and 10,200 compared executions per executor.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest_asyncio
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from loaders import Loaders
from loaders.records import UserRecord
from resolvers.viewer import Viewer
from schema import create_schema
from schema.analysis import RequestError
from schema.compiled.compare import describe, same
from schema.context import Context
from schema.executor import Executor
from server.cache.change_feed import ChangeFeed
from server.cli.seed import seed
from server.database import create_sessionmaker
from tests.conftest import Database
from tests.server.generated_queries import Document, custom_scalars, with_variables

EXAMPLES = int(os.environ.get("DIFFERENTIAL_EXAMPLES", "1700"))
SCHEMA = create_schema()._schema
ROLES = ("anonymous", "customer", "admin")


@dataclass
class Executors:
    compiled: Executor
    reference: Executor
    viewers: dict[str, Viewer]
    db: Database

    def context(self, role: str) -> Context:
        loaders = Loaders(sessionmaker=create_sessionmaker(self.db.engine), dialect=self.db.backend)
        return Context(viewer=self.viewers[role], loaders=loaders, changes=ChangeFeed())


async def _user(db: Database, email: str) -> UserRecord:
    from sqlalchemy import select

    from models import User

    async with db.sessionmaker() as session:
        user = (await session.execute(select(User).where(User.email == email))).scalar_one()
        return UserRecord(
            id=user.id,
            email=user.email,
            name=user.name,
            avatar_url=user.avatar_url,
            role=user.role,
            created_at=user.created_at,
        )


@pytest_asyncio.fixture
async def executors(db: Database) -> AsyncIterator[Executors]:
    await seed(engine=db.engine, scale="small")
    viewers = {
        "anonymous": Viewer(),
        "customer": Viewer(await _user(db, "customer@example.com")),
        "admin": Viewer(await _user(db, "admin@example.com")),
    }
    yield Executors(
        Executor(SCHEMA, execution="compiled"),
        Executor(SCHEMA, execution="graphql-core"),
        viewers,
        db,
    )


def queries() -> st.SearchStrategy[Document]:
    """Valid documents (as literals, or with their arguments as variables)."""
    from hypothesis_graphql import strategies

    from tests.server.generated_queries import merge_with_aliases

    scalars = custom_scalars()
    assert SCHEMA.query_type is not None
    names = [*SCHEMA.query_type.fields, "products", "products"]
    roots = st.one_of(
        *(strategies.queries(SCHEMA, fields=[name], custom_scalars=scalars) for name in names)
    )
    merged = st.lists(roots, min_size=1, max_size=3).map(merge_with_aliases)
    return st.one_of(
        merged.map(lambda query: (query, None)),
        merged.map(lambda query: with_variables(SCHEMA, query)),
    )


async def compare(executors: Executors, document: Document, role: str) -> bool:
    """Runs `document` as `role` on both executors; False when it never executes
    (invalid, over a limit, bad variables): nothing to compare."""
    query, variables = document
    results = []
    for executor in (executors.compiled, executors.reference):
        try:
            parsed = executor.parse(query)
            executor.validate(parsed)
            operation = parsed.operation(None)
            executor.check_variables(operation, variables)
        except RequestError:
            return False
        result = await executor.execute(
            parsed, operation_name=None, variables=variables, context=executors.context(role)
        )
        results.append(result)
    compiled, reference = results
    assert same(compiled, reference), (
        f"{role}: {query} {variables}\ncompiled:  {describe(compiled)}\n"
        f"reference: {describe(reference)}"
    )
    return True


@settings(
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
@given(document=queries())
async def test_compiled_and_graphql_core_agree(executors: Executors, document: Document) -> None:
    ran = [await compare(executors, document, role) for role in ROLES]
    assume(any(ran))
    event("variables" if document[1] else "literals")
    for role, executed in zip(ROLES, ran, strict=True):
        event(f"{role} {'compared' if executed else 'refused'}")


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
