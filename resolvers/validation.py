"""Input checks shared by the writes; each failure names the offending input path."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from resolvers.errors import InvalidInput


def require_range(value: int, low: int, high: int, *, field: str) -> int:
    if not low <= value <= high:
        raise InvalidInput(f"`{field}` must be between {low} and {high}, got {value}.", field=field)
    return value


def require_text(value: str, *, field: str, max_length: int) -> str:
    """`value` without surrounding whitespace: non-empty and at most `max_length` characters."""
    text = value.strip()
    if not text:
        raise InvalidInput(f"`{field}` must not be empty.", field=field)
    if len(text) > max_length:
        raise InvalidInput(
            f"`{field}` must be at most {max_length} characters, got {len(text)}.", field=field
        )
    return text


def require_max_length(value: str, *, field: str, max_length: int) -> str:
    """`value` as given when it is at most `max_length` characters (a search or a
    lookup key, where the cost of a statement grows with the length)."""
    if len(value) > max_length:
        raise InvalidInput(
            f"`{field}` must be at most {max_length} characters, got {len(value)}.", field=field
        )
    return value


def is_unique_violation(error: IntegrityError, *, constraint: str, columns: str) -> bool:
    """Whether `error` broke the unique constraint `constraint` (PostgreSQL names it;
    SQLite names the columns, as `table.column, table.column`)."""
    message = str(error.orig)
    return constraint in message or f"UNIQUE constraint failed: {columns}" in message
