"""The committed `schema.graphql` is the served schema: printed by the CLI, served over HTTP.

A schema change that is not committed to the file fails here, so every change of the
public API shows up as a diff in review. Regenerate with
`storefront schema print > schema.graphql`.
"""

from __future__ import annotations

from pathlib import Path

from graphql import build_schema, print_schema

from schema import create_schema
from tests.conftest import Api, Database
from tests.server.apps import serve
from tests.server.cli_support import acli

COMMITTED = Path(__file__).resolve().parents[3] / "schema.graphql"


def test_committed_schema_graphql_is_the_served_schema() -> None:
    printed = print_schema(create_schema()._schema) + "\n"

    assert printed == COMMITTED.read_text(encoding="utf-8"), (
        "schema.graphql differs from the code: run `storefront schema print > schema.graphql`"
    )
    # The file is valid SDL in its own right (what clients and codegen read).
    assert print_schema(build_schema(printed)) + "\n" == printed


async def test_cli_schema_print_prints_the_committed_file() -> None:
    # A clean environment: printing the schema needs no database or setting.
    result = await acli("schema", "print", env={})

    assert result.returncode == 0, result.stderr
    assert result.stdout == COMMITTED.read_text(encoding="utf-8")
    assert result.stderr == ""


async def test_get_schema_graphql_serves_the_committed_file(api: Api) -> None:
    response = await api.client.get("/graphql/schema.graphql")

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.text == COMMITTED.read_text(encoding="utf-8")
    assert "x-request-id" in response.headers  # through the app's middleware like any route


async def test_schema_graphql_refuses_other_methods(api: Api) -> None:
    response = await api.client.post("/graphql/schema.graphql", content="{}")

    assert response.status_code == 405


async def test_schema_graphql_is_not_served_without_introspection(db: Database) -> None:
    # The SDL is introspection in another form: INTROSPECTION=false hides both.
    async with serve(db, INTROSPECTION="false") as api:
        response = await api.client.get("/graphql/schema.graphql")
        introspection = (await api.post("{ __schema { queryType { name } } }")).json()

    assert response.status_code == 404
    assert "schema.graphql" not in response.text
    assert introspection["errors"]
