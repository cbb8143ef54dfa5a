"""Both executors side by side over the `small` seed, for the differential tests.

`executors` (a fixture, via tests/schema/conftest.py) holds a compiled and a
graphql-core Executor and a viewer per role; `compare` runs one document as one
role on both, each on a context of its own, and asserts the results are the same
JSON (schema/compiled/compare.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest_asyncio
from hypothesis import strategies as st

from loaders import Loaders
from loaders.records import UserRecord
from resolvers.viewer import Viewer
from schema import create_schema
from schema.analysis import RequestError
from schema.compiled.compare import describe, same
from schema.context import Context, fresh_context
from schema.executor import Executor
from server.cache.change_feed import ChangeFeed
from server.cli.seed import seed
from server.database import create_sessionmaker
from tests.conftest import Database
from tests.server.generated_queries import Document, custom_scalars, with_variables

SCHEMA = create_schema()._schema
ROLES = ("anonymous", "customer", "admin")


@dataclass(repr=False)  # hypothesis prints a failing case's fixtures: keep it short
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
        Executor(SCHEMA, execution="compiled", fresh_context=fresh_context),
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


COMPARED = "compared"
REFUSED = "refused"  # invalid, over a limit, bad variables: it never executes
HANDED_OVER = "graphql-core"  # an error answer the compiled run gives to graphql-core


async def compare(executors: Executors, document: Document, role: str) -> str:
    """Runs `document` as `role` on the compiled executor and on graphql-core, each on a
    context of its own, and asserts both answers are the same JSON; says what happened.

    An error answer the compiled run hands over is graphql-core's by construction, and
    graphql-core's own choice of errors there depends on timing (two runs of it can
    differ): it is not compared."""
    query, variables = document
    prepared = []
    for executor in (executors.compiled, executors.reference):
        try:
            parsed = executor.parse(query)
            executor.validate(parsed)
            executor.check_variables(parsed.operation(None), variables)
        except RequestError:
            return REFUSED
        prepared.append(parsed)
    compiled = await executors.compiled.execute_compiled(
        prepared[0], None, variables, executors.context(role)
    )
    if compiled is None:
        return HANDED_OVER
    reference = await executors.reference.execute(
        prepared[1], operation_name=None, variables=variables, context=executors.context(role)
    )
    assert same(compiled, reference), (
        f"{role}: {query} {variables}\ncompiled:  {describe(compiled)}\n"
        f"reference: {describe(reference)}"
    )
    return COMPARED
