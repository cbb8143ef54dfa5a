"""One log line per request, through a real `storefront serve` process, in both formats.

Each request's line carries the keys of operations.md (time, request id, method,
path, status, duration, operation type and name, cost, SQL statement count,
cache result, client id); the request id and trace id ride on every line logged
while the request runs; slow operations are logged again at warning.
"""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import pytest

from resolvers.tokens import create_token
from schema.global_id import to_global_id
from tests.conftest import Database
from tests.factories import Factory
from tests.live_server import LiveServer, live_server
from tests.server.observability.log_lines import output_with, records

QUERY = "query Catalog { categories { name } }"
MUTATION = 'mutation Rename($id: ID!) { updateProduct(id: $id, input: {name: "New"}) { name } }'
# Costs more than the small bucket below holds: it takes all of it, so the second is a 429.
EXPENSIVE = (
    "query Everything { products(first: 100) { nodes { reviews(first: 5) { nodes { body } } } } }"
)
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
KEYS = {
    "time",
    "level",
    "logger",
    "message",
    "request_id",
    "trace_id",
    "method",
    "path",
    "status",
    "duration_ms",
    "operation_type",
    "operation_name",
    "cost",
    "sql_statements",
    "cache_result",
    "client_id",
}


def _env(db: Database, log_format: str) -> dict[str, str]:
    return {
        "DATABASE_URL": db.url,
        "LOG_LEVEL": "info",
        "LOG_FORMAT": log_format,
        "CACHE_ENABLED": "true",
        "SLOW_OPERATION_MS": "0",
        # Every request logs a warning of its own: a line written during the request.
        "PERSISTED_QUERIES": "audit",
        "RATE_LIMIT_MAXIMUM": "200",
        "RATE_LIMIT_RESTORE_RATE": "0.01",
    }


def _request_line(lines: list[dict[str, Any]], response: httpx.Response) -> dict[str, Any]:
    request_id = response.headers["x-request-id"]
    [line] = [
        line
        for line in lines
        if line["logger"] == "storefront.requests" and line["message"] == "request"
        if line["request_id"] == request_id
    ]
    return line


def _as_int(value: Any) -> int:
    return int(value)


@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_each_request_is_one_line_with_the_contract_keys(
    db: Database, factory: Factory, log_format: str
) -> None:
    await factory.category(name="Lamps")
    product = await factory.product(name="Old")
    admin = await create_token(sessionmaker=db.sessionmaker, email="a@example.com", role="admin")
    with live_server(_env(db, log_format)) as server:
        post = _poster(server)
        miss = post({"query": QUERY}, traceparent=TRACEPARENT)
        hit = post({"query": QUERY})
        write = post(
            {"query": MUTATION, "variables": {"id": to_global_id("Product", product)}},
            token=admin.token,
        )
        bad = _post_bytes(server, b"{not json")
        post({"query": EXPENSIVE})
        refused = post({"query": EXPENSIVE})
        output = output_with(server, refused)

    assert (miss.status_code, hit.status_code, write.status_code) == (200, 200, 200), output
    assert (bad.status_code, refused.status_code) == (400, 429), refused.text
    lines = records(output, log_format)
    text = log_format == "text"

    first = _request_line(lines, miss)
    assert set(first) >= KEYS, first
    assert first["level"] == "info"
    assert first["time"].endswith("Z")
    assert first["time"][:4].isdigit()
    assert (first["method"], first["path"], first["trace_id"]) == ("POST", "/graphql", TRACE_ID)
    assert (first["operation_type"], first["operation_name"]) == ("query", "Catalog")
    assert _as_int(first["status"]) == 200
    assert float(first["duration_ms"]) > 0
    assert first["cache_result"] == "MISS"
    assert _as_int(first["sql_statements"]) >= 1
    assert _as_int(first["cost"]) >= 1
    assert first["client_id"] == "ip:127.0.0.1"
    if not text:  # JSON keeps numbers as numbers
        assert isinstance(first["status"], int)
        assert isinstance(first["duration_ms"], float)

    cached = _request_line(lines, hit)
    assert cached["cache_result"] == "HIT"
    assert _as_int(cached["sql_statements"]) == 0
    assert cached["trace_id"] == ""  # no traceparent

    mutation = _request_line(lines, write)
    assert (mutation["operation_type"], mutation["operation_name"]) == ("mutation", "Rename")
    assert mutation["client_id"] == f"user:{admin.user_id}"
    assert _as_int(mutation["sql_statements"]) >= 2  # the token's lookup and the write

    rejected = _request_line(lines, bad)
    assert (_as_int(rejected["status"]), rejected["operation_name"]) == (400, "")
    assert rejected["client_id"] == "ip:127.0.0.1"
    assert rejected["cost"] in ("", None)

    limited = _request_line(lines, refused)
    assert (_as_int(limited["status"]), limited["operation_name"]) == (429, "Everything")
    assert _as_int(limited["cost"]) == 0
    assert _as_int(limited["cost_requested"]) == 701

    # The warning logged inside the request (audit mode) carries both ids.
    [audit] = [line for line in lines if line["logger"] == "storefront.persisted"][:1]
    assert audit["request_id"] == miss.headers["x-request-id"]
    assert audit["trace_id"] == TRACE_ID
    # Outside any request: no ids.
    startup = [line for line in lines if line["logger"] == "storefront.cache"]
    assert startup
    assert "request_id" not in startup[0]

    # SLOW_OPERATION_MS=0: every operation that ran is slow, with its hash and SQL count.
    slow = [line for line in lines if line["message"] == "slow operation"]
    by_request = {line["request_id"]: line for line in slow}
    warning = by_request[miss.headers["x-request-id"]]
    assert warning["level"] == "warning"
    assert warning["document_hash"] == hashlib.sha256(QUERY.encode()).hexdigest()
    assert _as_int(warning["sql_statements"]) == _as_int(first["sql_statements"])
    assert bad.headers["x-request-id"] not in by_request  # refused before running
    assert refused.headers["x-request-id"] not in by_request
    assert admin.token not in output


async def test_operations_under_the_threshold_are_not_slow(db: Database) -> None:
    env = _env(db, "json") | {"SLOW_OPERATION_MS": "60000"}
    with live_server(env) as server:
        response = _poster(server)({"query": QUERY})
        output = output_with(server, response)
    lines = records(output, "json")
    assert _request_line(lines, response)["operation_name"] == "Catalog"
    assert not [line for line in lines if line["message"] == "slow operation"]


def _json_headers(token: str | None = None, traceparent: str | None = None) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if traceparent is not None:
        headers["traceparent"] = traceparent
    return headers


def _post_bytes(server: LiveServer, content: bytes) -> httpx.Response:
    return httpx.post(server.graphql, content=content, headers=_json_headers(), timeout=15)


def _poster(server: LiveServer) -> Any:
    def post(
        body: dict[str, Any], *, token: str | None = None, traceparent: str | None = None
    ) -> httpx.Response:
        headers = _json_headers(token, traceparent)
        return httpx.post(server.graphql, json=body, headers=headers, timeout=15)

    return post
