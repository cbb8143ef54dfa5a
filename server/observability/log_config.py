"""Process logging: one line per record, as `key=value` text or JSON (LOG_FORMAT).

Every handler (the root's, and those uvicorn configured) gets the formatter of
server/observability/log_format.py and three filters, in this order:
`RequestContext` (the request and trace ids), `RedactSecrets` (no token or
password gets through) and `EscapeControlCharacters`: log lines carry client
strings (an operation name, a path, an exception message), so a newline or
another control character in a message becomes visible text (`\\n`, `\\x1b`)
and cannot forge a line. Tracebacks keep their own line breaks in text; in JSON
they are one string of their line.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from server.observability.log_context import RequestContext
from server.observability.log_format import formatter
from server.observability.redaction import Redactor, RedactSecrets, url_password

if TYPE_CHECKING:
    from server.settings import Settings

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


def configure_from(settings: Settings) -> None:
    """Logging as `settings` say: LOG_LEVEL, LOG_FORMAT, and the URLs' passwords and the
    webhook secret keys redacted."""
    configure_logging(
        settings.log_level,
        log_format=settings.log_format,
        secrets=(
            url_password(settings.database_url),
            url_password(settings.redis_url),
            *(settings.webhook_secret_key or "").split(","),
        ),
    )


def configure_logging(
    level: str, *, log_format: str = "text", secrets: Iterable[str | None] = ()
) -> None:
    # What no line of ours prints, LogRecord need not gather: the thread and the
    # process (a getpid syscall per record since glibc 2.25); the Python Logging HOWTO's
    # "Optimization" section lists these switches. The caller's file and line stay:
    # `stack_info=True` needs the same walk.
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    logging.basicConfig(level=level.upper())
    logging.getLogger().setLevel(level.upper())
    install_filters(formatter(log_format), Redactor(secrets))


def _handlers() -> list[logging.Handler]:
    loggers: list[logging.Logger] = [logging.getLogger()]
    loggers += [
        logger
        for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    return [handler for logger in loggers for handler in logger.handlers]


def log_filters(redactor: Redactor) -> list[logging.Filter]:
    """The filters every handler gets, in the order they must run."""
    return [RequestContext(), RedactSecrets(redactor), EscapeControlCharacters()]


def install_filters(line_format: logging.Formatter, redactor: Redactor) -> None:
    """Gives every handler configured so far (the root's, and uvicorn's, configured
    before our factory runs) `line_format` and the filters, each once."""
    for handler in _handlers():
        handler.setFormatter(line_format)
        for log_filter in log_filters(redactor):
            if not any(isinstance(f, type(log_filter)) for f in handler.filters):
                handler.addFilter(log_filter)
