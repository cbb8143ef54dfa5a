"""Log lines never carry a client's control characters: a newline cannot forge a line."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from server.cli.migrate import upgrade
from server.observability.log_config import (
    EscapeControlCharacters,
    configure_logging,
    escape_control_characters,
)
from server.observability.log_format import TextFormatter
from tests.live_server import live_server
from tests.server.observability.log_lines import output_with, parse, records

FORGED = "Catalog\n2026-12-01 00:00:00,000 ERROR storefront.auth: admin token leaked\x1b[2J"


@pytest.fixture
async def audit_env(tmp_path: Path) -> dict[str, str]:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}"
    await upgrade(database_url)
    return {"DATABASE_URL": database_url, "PERSISTED_QUERIES": "audit", "LOG_LEVEL": "warning"}


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_newline_in_an_audited_operation_name_stays_on_its_line(
    audit_env: dict[str, str], log_format: str
) -> None:
    with live_server(audit_env | {"LOG_FORMAT": log_format}) as server:
        body = {"query": "query Catalog { categories { name } }", "operationName": FORGED}
        response = httpx.post(server.graphql, json=body)
        output = output_with(server, response)

    assert response.status_code in (200, 400)  # no operation of that name
    [line] = [line for line in output.splitlines() if "untrusted document" in line]
    message = parse(line, log_format)["message"]
    assert "(operation Catalog\\n2026-12-01 00:00:00,000 ERROR storefront.auth:" in message
    assert "leaked\\x1b[2J)" in message
    assert not any(line.startswith("2026-12-01 00:00:00,000") for line in output.splitlines())
    assert "\x1b" not in output
    # Every line is one record of its format: nothing the client sent split one.
    assert len(records(output, log_format)) == len(output.splitlines())


def test_arguments_of_every_kind_are_escaped_and_tracebacks_kept() -> None:
    class Shouty:
        def __str__(self) -> str:
            return "one\ntwo"

    record = logging.LogRecord(
        "x", logging.WARNING, __file__, 1, "%s %s %d %s\x00", ("a\nb", Shouty(), 3, None), None
    )
    assert EscapeControlCharacters().filter(record)
    assert record.getMessage() == "a\\nb one\\ntwo 3 None\\x00"
    assert EscapeControlCharacters().filter(record)  # idempotent
    assert record.getMessage() == "a\\nb one\\ntwo 3 None\\x00"

    named = logging.LogRecord("x", logging.INFO, __file__, 1, "%(who)s", None, None)
    named.args = {"who": "\rme"}
    EscapeControlCharacters().filter(named)
    assert named.getMessage() == "\\rme"
    assert escape_control_characters("tab\tkept\x7f") == "tab\tkept\\x7f"


@pytest.mark.parametrize("text", ["plain", "ünïcode ✓", ""])
def test_text_without_control_characters_is_unchanged(text: str) -> None:
    assert escape_control_characters(text) == text


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """The logging module's state as it was, after a test that configures it."""
    switches = ("logThreads", "logProcesses", "logMultiprocessing", "_srcfile")
    saved = {name: getattr(logging, name) for name in switches}
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    kept = {h: (h.formatter, list(h.filters)) for h in handlers}
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(logging, name, value)
        root.setLevel(level)
        root.handlers[:] = handlers
        for handler, (formatter, filters) in kept.items():
            handler.setFormatter(formatter)
            handler.filters[:] = filters


@pytest.mark.usefixtures("restored_logging")
def test_configured_logging_keeps_stack_info_and_the_caller() -> None:
    # configure_logging turns off what LogRecord gathers for no line of ours (thread,
    # process); a record asked for its stack, or read for its caller, keeps both.
    configure_logging("info")
    captured: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = captured.append  # type: ignore[method-assign]
    logger = logging.getLogger("tests.log_config.stack")
    logger.addHandler(handler)
    try:
        logger.warning("where am I", stack_info=True)
    finally:
        logger.removeHandler(handler)
    [record] = captured
    assert record.funcName == "test_configured_logging_keeps_stack_info_and_the_caller"
    assert record.stack_info is not None
    assert "Stack (most recent call last)" in record.stack_info
    assert "Stack (most recent call last)" in TextFormatter().format(record)
