"""The request id and trace id on every line logged while a request runs.

`RequestContext` is a logging filter installed on every handler (as
`EscapeControlCharacters` is): it reads the running request's facts from their
context variable, so a line logged anywhere below the middleware (a resolver's
error, a cache warning, a traceback) carries both ids without being passed them.

The trace id is the current span's when tracing is on (a request whose
`traceparent` did not parse then has the id of the trace it started); with
tracing off, it is the one of the request's W3C `traceparent` (`trace_id_of`).
"""

from __future__ import annotations

import logging
import re

from opentelemetry import trace

from server.observability.request_facts import current_facts

# version-traceid-parentid-flags, lower-case hex (W3C Trace Context, section 3.2).
_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")
_ZERO_TRACE, _ZERO_PARENT = "0" * 32, "0" * 16


def trace_id_of(traceparent: str | None) -> str:
    """The trace id of a well-formed `traceparent`, else "" (never an error).

    Example:
        trace_id_of("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        # -> "4bf92f3577b34da6a3ce929d0e0e4736"
    """
    match = _TRACEPARENT.match((traceparent or "").strip())
    if match is None:
        return ""
    version, trace_id, parent_id, _flags, rest = match.groups()
    # Version ff is invalid; version 00 has exactly four fields; later ones may add more.
    if version == "ff" or (version == "00" and rest) or trace_id == _ZERO_TRACE:
        return ""
    return "" if parent_id == _ZERO_PARENT else trace_id


def current_trace_id() -> str:
    """The trace id of the running span, else of the running request's `traceparent`
    ("" outside a request, or when it came without)."""
    span_context = trace.get_current_span().get_span_context()
    if span_context.is_valid:
        return format(span_context.trace_id, "032x")
    facts = current_facts()
    return "" if facts is None else facts.trace_id


class RequestContext(logging.Filter):
    """Adds `request_id` and `trace_id` to a record logged while a request runs."""

    def filter(self, record: logging.LogRecord) -> bool:
        facts = current_facts()
        if facts is not None:
            record.request_id = facts.request_id
            record.trace_id = current_trace_id()
        return True
