"""One log line per HTTP request, and a warning for a slow operation.

`RequestLogMiddleware` is pure ASGI, placed just inside `RequestIdMiddleware`:
it starts the request's `RequestFacts` (request id, trace id from
`traceparent`), binds them for the request's context (the log filter and the
SQL counter read them there), times the request to its last body byte, and
then writes at `info`, on logger `storefront.requests`:

    method path status duration_ms operation_type operation_name cost
    cost_requested sql_statements cache_result client_id

(`request_id` and `trace_id` come with every line, from the log filter).
A request whose operations ran (were charged) and took longer than SLOW_OPERATION_MS is also
written at `warning` with its document hash(es) and SQL statement count.

Example:
    Middleware(RequestLogMiddleware, slow_operation_ms=500, proxies=settings.trusted_proxies)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.http.client_id import Network, client_ip
from server.observability.log_context import trace_id_of
from server.observability.request_facts import (
    RequestFacts,
    attach_facts,
    bind_facts,
    unbind_facts,
)

logger = logging.getLogger("storefront.requests")


class RequestLogMiddleware:
    def __init__(
        self, app: ASGIApp, *, slow_operation_ms: int, proxies: Sequence[Network] = ()
    ) -> None:
        self.app = app
        self.slow_operation_ms = slow_operation_ms
        self.proxies = proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = dict(scope["headers"])
        state = scope.setdefault("state", {})
        facts = RequestFacts(
            request_id=state.get("request_id", ""),
            trace_id=trace_id_of(headers.get(b"traceparent", b"").decode("latin-1")),
        )
        attach_facts(state, facts)
        token = bind_facts(facts)
        status, cache_header, finished = 500, "", 0.0

        async def send_watching(message: Message) -> None:
            nonlocal status, cache_header, finished
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, value in message.get("headers", ()):
                    if name.lower() == b"x-cache":
                        cache_header = value.decode("latin-1")
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                finished = time.perf_counter()
            await send(message)

        try:
            await self.app(scope, receive, send_watching)
        finally:
            duration_ms = ((finished or time.perf_counter()) - started) * 1000
            try:
                log_request(
                    scope,
                    facts,
                    status,
                    cache_header,
                    duration_ms,
                    slow_operation_ms=self.slow_operation_ms,
                    proxies=self.proxies,
                )
            finally:
                unbind_facts(token)


def log_request(
    scope: Scope,
    facts: RequestFacts,
    status: int,
    cache_header: str,
    duration_ms: float,
    *,
    slow_operation_ms: int,
    proxies: Sequence[Network],
) -> None:
    """The request's line at `info` and, for a slow operation, its warning (with
    `facts` bound, as the log filter reads them)."""
    # Slow *operations*: only those that ran (were charged), not refusals.
    slow = duration_ms > slow_operation_ms and any(not bill.refused for bill in facts.bills)
    if not (slow or logger.isEnabledFor(logging.INFO)):
        return
    operations = facts.operations
    fields: dict[str, Any] = {
        "method": scope.get("method", ""),
        "path": scope.get("path", ""),
        "status": status,
        "duration_ms": round(duration_ms, 1),
        "operation_type": ",".join(op.kind for op in operations),
        "operation_name": ",".join(op.name for op in operations),
        "cost": sum(bill.actual for bill in facts.bills) if facts.bills else None,
        "cost_requested": sum(b.requested for b in facts.bills) if facts.bills else None,
        "sql_statements": facts.sql_statements,
        "cache_result": facts.cache_result or cache_header,
        "client_id": facts.client_id or _client(scope, proxies),
    }
    logger.info("request", extra=fields)
    if slow:
        logger.warning(
            "slow operation",
            extra={
                "operation_type": fields["operation_type"],
                "operation_name": fields["operation_name"],
                "document_hash": ",".join(op.document_hash for op in operations),
                "duration_ms": fields["duration_ms"],
                "sql_statements": facts.sql_statements,
                "threshold_ms": slow_operation_ms,
            },
        )


def _client(scope: Scope, proxies: Sequence[Network]) -> str:
    """`ip:<address>` when the GraphQL layer named no client (a refused request)."""
    peer = scope.get("client")
    headers = dict(scope["headers"])
    forwarded = headers.get(b"x-forwarded-for", b"").decode("latin-1") or None
    return "ip:" + client_ip(peer[0] if peer else None, forwarded, proxies)
