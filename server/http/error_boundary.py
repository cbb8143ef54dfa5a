"""The outermost error boundary: no exception leaves the app as a plain-text 500.

Anything a request raises that nothing else handled becomes a JSON GraphQL error
with the request id: `INTERNAL_SERVER_ERROR` (500, message masked) or, when the
database cannot be reached (authentication included), `SERVICE_UNAVAILABLE`
(503 with `Retry-After`). It is logged once: with its traceback, or for an
outage as one warning line. Starlette's own
ServerErrorMiddleware would answer text/plain and re-raise, so uvicorn would log
the error again and may drop the connection.

An exception after the answer has started (a background task such as a cost
refund) can no longer change the answer: it is logged, and the response stands.
"""

from __future__ import annotations

import logging

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from schema.errors import (
    INTERNAL_SERVER_ERROR,
    MASKED_MESSAGE,
    RETRY_AFTER_SECONDS,
    SERVICE_UNAVAILABLE,
    UNAVAILABLE_MESSAGE,
    error_payload,
    is_database_unavailable,
)
from server.http.negotiation import APPLICATION_JSON, GRAPHQL_RESPONSE_JSON

logger = logging.getLogger("storefront.errors")


class ErrorBoundaryMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_tracking)
        except Exception as error:
            await report_error(scope, send, error, started=started)


async def report_error(scope: Scope, send: Send, error: Exception, *, started: bool) -> int | None:
    """Logs what a request raised, and answers it (unless its answer has `started`):
    the status it answered with, if it did."""
    request_id = scope.get("state", {}).get("request_id")
    unavailable = is_database_unavailable(error)
    where = (request_id, scope.get("method"), scope.get("path"))
    if unavailable:
        # An outage is expected and may last: one line per request, no traceback.
        logger.warning(
            "database unavailable (request %s, %s %s): %s",
            *where,
            f"{type(error).__name__}: {error}".splitlines()[0],
        )
    else:
        logger.error("unhandled error (request %s, %s %s)", *where, exc_info=error)
    if started:
        return None
    await _answer(scope, send, unavailable=unavailable, request_id=request_id)
    return 503 if unavailable else 500


async def _answer(scope: Scope, send: Send, *, unavailable: bool, request_id: str | None) -> None:
    extensions = {} if request_id is None else {"requestId": request_id}
    headers = [(b"content-type", _media_type(scope).encode())]
    if unavailable:
        error = error_payload(UNAVAILABLE_MESSAGE, SERVICE_UNAVAILABLE, **extensions)
        status = 503
        headers.append((b"retry-after", str(RETRY_AFTER_SECONDS).encode()))
    else:
        error = error_payload(MASKED_MESSAGE, INTERNAL_SERVER_ERROR, **extensions)
        status = 500
    body = orjson.dumps({"errors": [error]})
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _media_type(scope: Scope) -> str:
    """The GraphQL-over-HTTP media type when the client accepts it, else plain JSON."""
    for name, value in scope["headers"]:
        if name == b"accept" and GRAPHQL_RESPONSE_JSON.encode() in value:
            return GRAPHQL_RESPONSE_JSON
    return APPLICATION_JSON
