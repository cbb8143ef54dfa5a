"""Builds the Strawberry schema once per process."""

from __future__ import annotations

import strawberry

from schema.query import Query


def create_schema() -> strawberry.Schema:
    return strawberry.Schema(query=Query)
