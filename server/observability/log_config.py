"""Process logging: one line per record, with the logger name and level.

Log lines carry client strings (an operation name, a path, an exception
message), so every handler gets `EscapeControlCharacters`: a newline or
another control character in a message becomes visible text (`\\n`,
`\\x1b`) and cannot forge a line. Tracebacks keep their own line breaks.
"""

from __future__ import annotations

import logging
import re
from typing import Any

# C0 controls and DEL; TAB is harmless on one line and kept.
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f]")
_NAMED = {"\n": "\\n", "\r": "\\r"}


def escape_control_characters(text: str) -> str:
    """`text` with each control character but TAB written as `\\n`, `\\r` or `\\xNN`."""
    return _CONTROL.sub(lambda m: _NAMED.get(m.group(), f"\\x{ord(m.group()):02x}"), text)


def _escaped(value: Any) -> Any:
    if isinstance(value, str):
        return escape_control_characters(value)
    if value is None or isinstance(value, int | float):
        return value
    # Any other object is rendered with %s or %r; its text may come from a client.
    text = str(value)
    return escape_control_characters(text) if _CONTROL.search(text) else value


class EscapeControlCharacters(logging.Filter):
    """Escapes control characters in a record's message and arguments, in place.

    Arguments are escaped one by one rather than the message rendered once:
    formatters such as uvicorn's access log read `record.args` themselves.
    Escaping is idempotent, so a record passing several handlers is unharmed.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = escape_control_characters(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_escaped(arg) for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {key: _escaped(value) for key, value in record.args.items()}
        return True


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    install_escaping()


def install_escaping() -> None:
    """Adds `EscapeControlCharacters` to every handler configured so far: the root's
    and those of other loggers (uvicorn configures its own before our factory runs)."""
    loggers: list[logging.Logger] = [logging.getLogger()]
    loggers += [
        logger
        for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    for logger in loggers:
        for handler in logger.handlers:
            if not any(isinstance(f, EscapeControlCharacters) for f in handler.filters):
                handler.addFilter(EscapeControlCharacters())
