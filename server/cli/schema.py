"""`storefront schema print`: the SDL the server serves, as committed in `schema.graphql`.

The committed file makes every schema change a visible diff in review;
tests/server/cli/test_schema_print.py fails when the code and the file differ.
Regenerate it with `storefront schema print > schema.graphql`.
"""

from __future__ import annotations

import click


@click.group("schema")
def schema_group() -> None:
    """The GraphQL schema the server serves."""


@schema_group.command("print")
def schema_print() -> None:
    """Print the served schema as SDL: schema.graphql, also GET /graphql/schema.graphql."""
    # Imported here: `storefront --help` must not import graphql or strawberry.
    from graphql import print_schema

    from schema import create_schema

    click.echo(print_schema(create_schema()._schema))
