"""Fixtures of the schema tests."""

from tests.schema.differential_support import executors

__all__ = ["executors"]
