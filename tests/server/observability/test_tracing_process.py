"""Tracing in a real `storefront serve` process: spans printed by the console exporter
(flushed on shutdown), exported over OTLP/HTTP to a receiver of the test's, and an
unknown exporter refused in one line."""

from __future__ import annotations

import contextlib
import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

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


class _Receiver(ThreadingHTTPServer):
    """Collects what is POSTed to /v1/traces, decoded."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[ExportTraceServiceRequest] = []
        self.paths: list[str] = []

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def span_names(self, trace_id: str) -> set[str]:
        return {
            span.name
            for request in self.requests
            for resource in request.resource_spans
            for scope in resource.scope_spans
            for span in scope.spans
            if span.trace_id.hex() == trace_id
        }


class _Handler(BaseHTTPRequestHandler):
    server: _Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.paths.append(self.path)
        self.server.requests.append(ExportTraceServiceRequest.FromString(body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # quiet: no line per export
        pass


@contextlib.contextmanager
def _receiver() -> Iterator[_Receiver]:
    receiver = _Receiver()
    thread = threading.Thread(target=receiver.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.shutdown()
        receiver.server_close()


def test_serve_exports_its_spans_over_otlp_http(sqlite_url: str) -> None:
    with _receiver() as receiver:
        env = {
            "DATABASE_URL": sqlite_url,
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_SERVICE_NAME": "shop-eu",
        }
        with live_server(env) as server:
            response = httpx.post(
                server.graphql,
                json={"query": "query Catalog { categories { name } }"},
                headers={"traceparent": TRACEPARENT},
            )
            assert response.status_code == 200, response.text
            server.process.terminate()
            server.process.wait(timeout=20)
        names = receiver.span_names(TRACE_ID)
        assert {"POST /graphql", "query Catalog"} <= names, names
        assert set(receiver.paths) == {"/v1/traces"}
        services = {
            attribute.value.string_value
            for request in receiver.requests
            for resource in request.resource_spans
            for attribute in resource.resource.attributes
            if attribute.key == "service.name"
        }
        assert services == {"shop-eu"}


def test_serve_refuses_an_unknown_traces_exporter_in_one_line(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}", "OTEL_TRACES_EXPORTER": "jaeger"}
    result = cli("serve", env=env)
    assert_one_line_error(result, "OTEL_TRACES_EXPORTER", "otlp, console, none", "'jaeger'")
