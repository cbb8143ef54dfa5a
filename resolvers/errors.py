"""Domain errors: the few ways a request can fail on purpose.

They know nothing of GraphQL; `schema/errors.py` maps each to its error code
in one place.
"""

from __future__ import annotations


class DomainError(Exception):
    """An expected failure whose message is safe to show to the client."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInput(DomainError):
    """The caller's input is malformed or out of range."""


class Unauthenticated(DomainError):
    """The operation needs a signed-in viewer."""


class Forbidden(DomainError):
    """The viewer may not see or do this."""


class NotFound(DomainError):
    """The thing asked for does not exist (or is not visible to the viewer)."""


class NotConfigured(DomainError):
    """The server lacks a setting this operation needs (the message names it)."""
