"""The GraphQL surface: types, Query, Context, error mapping and the executor."""

from schema.build import create_schema
from schema.context import Context
from schema.executor import Document, Executor, RequestError, is_mutation

__all__ = ["Context", "Document", "Executor", "RequestError", "create_schema", "is_mutation"]
