"""Tracing in a real `storefront serve` process: spans printed by the console exporter
(flushed on shutdown), and an unknown exporter refused in one line."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from server.cli.migrate import upgrade
from tests.live_server import live_server
from tests.server.cli_support import assert_one_line_error, cli

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{TRACE_ID}-b7ad6b7169203331-01"


@pytest.fixture
async def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'traced.db'}"
    await upgrade(url)
    return url


def _console_spans(output: str) -> list[dict[str, object]]:
    """The spans the console exporter printed: JSON objects of several lines each."""
    decoder = json.JSONDecoder()
    spans = []
    for match in re.finditer(r"^\{$", output, flags=re.MULTILINE):
        span, _end = decoder.raw_decode(output, match.start())
        spans.append(span)
    return spans


def test_serve_prints_the_spans_of_a_request_and_flushes_them_on_shutdown(
    sqlite_url: str,
) -> None:
    # A schedule far longer than the test: only the flush on shutdown can print them.
    env = {
        "DATABASE_URL": sqlite_url,
        "OTEL_TRACES_EXPORTER": "console",
        "OTEL_BSP_SCHEDULE_DELAY": "600000",
        "OTEL_SERVICE_NAME": "",
    }
    with live_server(env) as server:
        response = httpx.post(
            server.graphql,
            json={"query": "query Catalog { categories { name } }"},
            headers={"traceparent": TRACEPARENT},
        )
        assert response.status_code == 200, response.text
        assert TRACE_ID not in server.output()  # still queued
        server.process.terminate()
        server.process.wait(timeout=20)
        output = server.output()
    spans = [s for s in _console_spans(output) if TRACE_ID in str(s["context"])]
    names = {str(span["name"]) for span in spans}
    assert {"POST /graphql", "query Catalog"} <= names, output
    assert any(name.startswith("SELECT") for name in names), names
    resource = spans[0]["resource"]
    assert isinstance(resource, dict)
    assert resource["attributes"]["service.name"] == "storefront"


def test_serve_refuses_an_unknown_traces_exporter_in_one_line(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}", "OTEL_TRACES_EXPORTER": "jaeger"}
    result = cli("serve", env=env)
    assert_one_line_error(result, "OTEL_TRACES_EXPORTER", "otlp, console, none", "'jaeger'")
