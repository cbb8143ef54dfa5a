"""Error codes: domain errors and GraphQL failures mapped to `extensions.code` in one place.

Expected failures keep their message; anything unexpected is masked to
"Internal server error" for the client and logged in full.
"""

from __future__ import annotations

import logging
from typing import Any

from graphql import GraphQLError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from resolvers.errors import (
    DomainError,
    Forbidden,
    InvalidInput,
    NotConfigured,
    NotFound,
    Unauthenticated,
)
from resolvers.idempotency import KeyInUse

logger = logging.getLogger("storefront.errors")

BAD_USER_INPUT = "BAD_USER_INPUT"
UNAUTHENTICATED = "UNAUTHENTICATED"
FORBIDDEN = "FORBIDDEN"
NOT_FOUND = "NOT_FOUND"
GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"
QUERY_TOO_DEEP = "QUERY_TOO_DEEP"
QUERY_TOO_COMPLEX = "QUERY_TOO_COMPLEX"
QUERY_TIMEOUT = "QUERY_TIMEOUT"
RATE_LIMITED = "RATE_LIMITED"
SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"

# What a client should wait before retrying an answer of SERVICE_UNAVAILABLE.
RETRY_AFTER_SECONDS = 5
UNAVAILABLE_MESSAGE = "The service is temporarily unavailable; retry shortly."
# An Idempotency-Key sent again with a different request (HTTP 400).
IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
# Another request with the same Idempotency-Key won the race (HTTP 409).
IDEMPOTENCY_KEY_IN_PROGRESS = "IDEMPOTENCY_KEY_IN_PROGRESS"

# PostgreSQL's query_canceled: `statement_timeout` stopped the statement.
_QUERY_CANCELED = "57014"
# SQLSTATE classes of a database that cannot serve: connection exceptions (08),
# insufficient resources such as too many connections (53), operator
# intervention such as a shutdown (57P).
_UNAVAILABLE_SQLSTATES = ("08", "53", "57P")

DOMAIN_ERROR_CODES: dict[type[DomainError], str] = {
    InvalidInput: BAD_USER_INPUT,
    Unauthenticated: UNAUTHENTICATED,
    Forbidden: FORBIDDEN,
    NotFound: NOT_FOUND,
    KeyInUse: IDEMPOTENCY_KEY_IN_PROGRESS,
    NotConfigured: SERVICE_UNAVAILABLE,
}

MASKED_MESSAGE = "Internal server error"


def error_payload(message: str, code: str, **extensions: Any) -> dict[str, Any]:
    """A spec-shaped error object for failures raised outside execution."""
    return {"message": message, "extensions": {"code": code, **extensions}}


def format_request_error(error: GraphQLError, code: str) -> dict[str, Any]:
    """A parse, validation or variable error: shown as is, with its code."""
    formatted: dict[str, Any] = dict(error.formatted)
    formatted["extensions"] = {**(error.extensions or {}), "code": code}
    return formatted


def format_execution_error(error: GraphQLError, *, request_id: str | None) -> dict[str, Any]:
    """An error raised while resolving a field: mapped when expected, masked otherwise."""
    original = error.original_error
    if isinstance(original, DomainError):
        formatted: dict[str, Any] = dict(error.formatted)
        extensions: dict[str, Any] = {
            "code": DOMAIN_ERROR_CODES.get(type(original), BAD_USER_INPUT)
        }
        if original.field is not None:
            extensions["field"] = original.field
        formatted["extensions"] = extensions
        return formatted
    if original is None and error.extensions and "code" in error.extensions:
        return dict(error.formatted)
    if is_database_unavailable(original):
        logger.warning(
            "database unavailable resolving %s (request %s): %s",
            _path(error),
            request_id,
            _describe(original),
        )
        formatted = dict(error.formatted)
        formatted["message"] = UNAVAILABLE_MESSAGE
        formatted["extensions"] = {"code": SERVICE_UNAVAILABLE}
        return formatted
    if _is_statement_timeout(original):
        logger.warning("statement timeout resolving %s (request %s)", _path(error), request_id)
        formatted = dict(error.formatted)
        formatted["message"] = "The query took too long: a database statement timed out."
        formatted["extensions"] = {"code": QUERY_TIMEOUT}
        return formatted
    logger.error(
        "unexpected error resolving %s (request %s)",
        _path(error),
        request_id,
        exc_info=original or error,
    )
    masked: dict[str, Any] = {
        "message": MASKED_MESSAGE,
        "extensions": {"code": INTERNAL_SERVER_ERROR},
    }
    if error.locations is not None:
        masked["locations"] = [loc.formatted for loc in error.locations]
    if error.path is not None:
        masked["path"] = error.path
    if request_id is not None:
        masked["extensions"]["requestId"] = request_id
    return masked


def is_database_unavailable(error: BaseException | None) -> bool:
    """Whether `error` (or what caused it) says the database cannot be reached or
    cannot serve right now, rather than that the request or the code is wrong."""
    while error is not None:
        if isinstance(error, DBAPIError):
            sqlstate = getattr(error.orig, "sqlstate", None) or ""
            if error.connection_invalidated or sqlstate.startswith(_UNAVAILABLE_SQLSTATES):
                return True
            if sqlstate == _QUERY_CANCELED:
                return False  # a statement timeout: the query's fault, not an outage
        # A refused or reset connection is a bare OSError (asyncpg); a broken one an
        # InterfaceError; SQLite's "unable to open" or "locked" an OperationalError;
        # an exhausted pool SQLAlchemy's TimeoutError.
        if isinstance(error, (OSError, InterfaceError, OperationalError, PoolTimeout)):
            return True
        error = error.__cause__ or error.__context__
    return False


def _describe(error: BaseException | None) -> str:
    return f"{type(error).__name__}: {error}".splitlines()[0] if error is not None else "-"


def _is_statement_timeout(error: BaseException | None) -> bool:
    return (
        isinstance(error, DBAPIError) and getattr(error.orig, "sqlstate", None) == _QUERY_CANCELED
    )


def _path(error: GraphQLError) -> str:
    return ".".join(str(p) for p in error.path or [])
