"""The pieces of a log line: logfmt quoting, the two formats' keys, `traceparent`."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.observability.log_context import trace_id_of
from server.observability.log_format import JsonFormatter, TextFormatter, iso_time, quote
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


@settings(max_examples=2000, deadline=None)
@given(
    st.one_of(
        st.floats(min_value=-4e9, max_value=4e9, allow_nan=False),
        # The edge of a second, where rounding to microseconds carries into the next.
        st.integers(0, 4_000_000_000).map(lambda s: s + 0.9995),
        st.integers(0, 4_000_000_000).map(lambda s: s + 0.9999995),
    )
)
def test_a_line_s_time_is_datetime_s_to_the_millisecond(created: float) -> None:
    # iso_time keeps the text of the last second it wrote; it must write what
    # datetime writes, whichever second came before.
    record = _record("request")
    record.created = created
    moment = datetime.fromtimestamp(created, tz=UTC)
    assert iso_time(record) == moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


_VALUES = st.one_of(
    st.none(),
    st.integers(),
    st.floats(allow_nan=False),
    st.booleans(),
    st.text(st.sampled_from([*'aZ09/:._-=" \\\t\n\x1b\x7f', "\u00a0", "\u2028", "\u00e9"])),
)


@settings(max_examples=1000, deadline=None)
@given(st.dictionaries(st.sampled_from(["method", "path", "cost", "operation_name"]), _VALUES))
def test_a_text_line_quotes_each_value_as_quote_does(extra: dict[str, object]) -> None:
    # A line whose values are all bare is written without quoting each one; either
    # way it must be the line of `quote` applied to every value.
    record = _record("request", **extra)
    line = TextFormatter().format(record)
    expected = [f"{key}={quote(value)}" for key, value in extra.items()]
    assert line.endswith(" ".join(["message=request", *expected]))
