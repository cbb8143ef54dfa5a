"""Builds the Strawberry schema once per process."""

from __future__ import annotations

import strawberry

from schema.lean import install_lean_resolvers
from schema.mutation import Mutation
from schema.query import Query


def create_schema() -> strawberry.Schema:
    schema = strawberry.Schema(query=Query, mutation=Mutation)
    install_lean_resolvers(schema)
    return schema
