"""How a log line is written (LOG_FORMAT): `key=value` text, or one JSON object.

Both formats write the same keys in the same order: `time` (UTC, ISO 8601, ms),
`level`, `logger`, `message`, then `request_id` and `trace_id` while a request
runs, then whatever the line was logged with (`extra=`: the request log's keys).

Text quotes a value that is empty or holds a space, `"`, `=`, `\\` or a control
character, escaping inside the quotes as Go's `strconv.Quote` (logfmt) does, so a
client string cannot add a key or a line. A traceback follows its line, on lines
of its own. JSON is python-json-logger's formatter over orjson: the encoder
escapes, and a traceback is the `exc_info` string of the same line.

Example (text):
    time=2026-12-01T11:47:04.123Z level=info logger=storefront.requests message=request
    request_id=6f1c… trace_id= method=POST path=/graphql status=200 duration_ms=12.4 …
"""

from __future__ import annotations

import logging
import math
import re
from datetime import UTC, datetime
from typing import Any

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.orjson import OrjsonFormatter

# Attributes every LogRecord has, and uvicorn's colored twin of its message.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "color_message",
}
_FIRST = ("request_id", "trace_id")
_BARE = re.compile(r'[^\s"=\\\x00-\x1f\x7f]+')
_SPECIAL = re.compile(r'[\s"=\\\x00-\x1f\x7f]')  # what _BARE cannot hold
_QUOTED = re.compile(r'["\\\x00-\x1f\x7f]')
_NAMED = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


# (whole second, its ISO 8601 text): every request's line needs a time, and most lines
# of a busy second share all of it but the ms. One tuple, swapped whole, so a thread
# reading it never pairs one second with another's text.
_last_second: tuple[int, str] = (-1, "")


def iso_time(record: logging.LogRecord) -> str:
    """`record.created` in UTC to the millisecond, e.g. `2026-12-01T11:47:04.123Z`."""
    global _last_second
    second = math.floor(record.created)
    # As datetime.fromtimestamp: microseconds rounded half to even, then truncated to ms.
    micros = round((record.created - second) * 1e6)
    if micros >= 1_000_000:
        second, micros = second + 1, micros - 1_000_000
    cached, text = _last_second
    if second != cached:
        moment = datetime.fromtimestamp(second, tz=UTC)
        text = moment.isoformat(timespec="seconds").replace("+00:00", "")
        _last_second = (second, text)
    return f"{text}.{micros // 1000:03d}Z"


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The fields a line was logged with beyond the standard ones, ids first."""
    extra = {k: v for k, v in record.__dict__.items() if k not in _STANDARD and k[:1] != "_"}
    first = {key: extra.pop(key) for key in _FIRST if key in extra}
    return first | extra


def quote(value: object) -> str:
    """A logfmt value: bare when it can be, else quoted and escaped (None is empty)."""
    if type(value) is int:  # most values of a request's line: never quoted
        return str(value)
    text = "" if value is None else str(value)
    if _BARE.fullmatch(text):
        return text
    escaped = _QUOTED.sub(lambda m: _NAMED.get(m.group(), f"\\x{ord(m.group()):02x}"), text)
    return f'"{escaped}"' if text else ""


class TextFormatter(logging.Formatter):
    """`key=value` pairs on one line; a traceback on the lines after it."""

    def format(self, record: logging.LogRecord) -> str:
        record.message = record.getMessage()
        fields = {
            "time": iso_time(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.message,
            **extra_fields(record),
        }
        texts = ["" if v is None else v if type(v) is str else str(v) for v in fields.values()]
        pairs = zip(fields, texts, strict=True)
        if _SPECIAL.search("".join(texts)) is None:  # the common line: every value bare
            line = " ".join([f"{key}={text}" for key, text in pairs])
        else:
            line = " ".join([f"{key}={quote(text)}" for key, text in pairs])
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line += "\n" + record.exc_text
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


class JsonFormatter(OrjsonFormatter):
    """One JSON object per line, with the keys of `TextFormatter`."""

    def __init__(self) -> None:
        super().__init__(reserved_attrs=[*RESERVED_ATTRS, "color_message"])

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        log_data["time"] = iso_time(record)
        log_data["level"] = record.levelname.lower()
        log_data["logger"] = record.name
        log_data["message"] = record.message
        log_data.update(extra_fields(record))
        log_data.update(message_dict)  # exc_info, stack_info


def formatter(log_format: str) -> logging.Formatter:
    """The formatter of LOG_FORMAT (`text` or `json`)."""
    return JsonFormatter() if log_format == "json" else TextFormatter()
