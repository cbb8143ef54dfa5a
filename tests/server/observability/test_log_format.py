"""The pieces of a log line: logfmt quoting, the two formats' keys, `traceparent`."""

from __future__ import annotations

import json
import logging

import pytest

from server.observability.log_context import trace_id_of
from server.observability.log_format import JsonFormatter, TextFormatter, quote
from tests.server.observability.log_lines import parse_text

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("Catalog", "Catalog"),
        ("/graphql", "/graphql"),
        (200, "200"),
        (None, ""),
        ("", ""),
        ("two words", '"two words"'),
        ('a"b', '"a\\"b"'),
        ("k=v", '"k=v"'),
        ("back\\slash", '"back\\\\slash"'),
        ("line\nbreak\x1b", '"line\\nbreak\\x1b"'),
    ],
)
def test_values_are_bare_when_they_can_be_and_quoted_otherwise(value: object, written: str) -> None:
    assert quote(value) == written


def _record(message: str, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("storefront.test", logging.INFO, __file__, 1, message, (), None)
    record.__dict__.update(extra)
    return record


def test_a_client_string_cannot_add_a_key_or_a_line_in_text() -> None:
    forged = 'x" level=error status=200\nforged=1'
    line = TextFormatter().format(_record("request", operation_name=forged, status=200))
    assert "\n" not in line
    fields = parse_text(line)
    assert fields["operation_name"] == forged.replace("\n", "\\n")
    assert (fields["level"], fields["status"], "forged" in fields) == ("info", "200", False)


def test_both_formats_write_the_same_keys_in_the_same_order() -> None:
    record = _record("request", trace_id=TRACE, method="GET", request_id="r1")
    text = list(parse_text(TextFormatter().format(record)))
    data = list(json.loads(JsonFormatter().format(record)))
    assert text == data
    assert text[:6] == ["time", "level", "logger", "message", "request_id", "trace_id"]


@pytest.mark.parametrize(
    ("header", "trace_id"),
    [
        (f"00-{TRACE}-00f067aa0ba902b7-01", TRACE),
        (f"01-{TRACE}-00f067aa0ba902b7-01-future", TRACE),  # later versions may add fields
        (f"00-{TRACE}-00f067aa0ba902b7-01-extra", ""),
        (f"ff-{TRACE}-00f067aa0ba902b7-01", ""),
        (f"00-{'0' * 32}-00f067aa0ba902b7-01", ""),
        (f"00-{TRACE}-{'0' * 16}-01", ""),
        (f"00-{TRACE.upper()}-00f067aa0ba902b7-01", ""),
        ("garbage", ""),
        (None, ""),
    ],
)
def test_a_traceparent_gives_its_trace_id_or_nothing(header: str | None, trace_id: str) -> None:
    assert trace_id_of(header) == trace_id
