"""Counts the SQL statements each request sends, for its log line."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from schema.compiled.compare import shadowing
from server.observability.request_facts import current_facts


def _count(*_args: Any) -> None:
    # SQLAlchemy runs the event in a greenlet that shares the awaiting task's context,
    # so the facts found here are those of the request (or loader batch) that sent it.
    facts = current_facts()
    if facts is not None and not shadowing.get():  # not a compared reference run's
        facts.sql_statements += 1


def count_statements(engine: AsyncEngine) -> None:
    """Adds each statement `engine` sends to the running request's facts (outside a
    request, e.g. in the CLI, nothing is counted)."""
    event.listen(engine.sync_engine, "before_cursor_execute", _count)
