"""The hit path: a repeated query whose fresh answer is in this process's memory,
answered in front of the middleware stack.

Why: a cached hit does almost nothing, and the stack around it was most of its cost.
Each of the seven middlewares on the way to `/graphql` (request id, request log, HTTP
metrics, error boundary, compression, body limit, direct route) wraps `send` in a
closure and passes every message through it; with the view's own request object and
the pipeline's steps, a hit cost about 230 µs of CPU where the duties it must do
(charge, splice the cost, headers, metrics) cost about 85 (bench/hit_floor.py). This
ASGI middleware does those duties once, in line, for the requests that qualify, with
the same functions the stack uses. No library does this: it is the stack's own
bookkeeping, taken in one pass.

What qualifies: `POST /graphql` with a JSON body of at most MAX_SOURCE_BYTES (by its
`Content-Length`), and none of the headers that change an answer's way: `Origin`
(CORS), `If-None-Match`, `Cache-Control`, `Idempotency-Key`, a read-after token (its
header or its cookie), a dry run. The viewer must be one the auth cache vouches for
(anonymous, or a fresh token), and the body bytes ones whose checks passed before
(the prepared memo); then `fresh_hit` (server/pipeline/fresh_hit.py) answers when the
result cache holds a fresh answer without a round trip. Everything else, including every request it
declines after reading the body, goes on to the full stack with the body handed on
unread. With tracing on, the path is not installed: a span per request is wanted.

What it sends is what the stack sends for that request: the view's `single_response`
(status, caching headers, stored coded answer), the compression middleware's pass over
it (`Compressor`), `X-Request-ID`; then it counts the request in
`storefront_http_requests_total` and writes the request log line, as those
middlewares do. An exception is reported as the error boundary reports it.
tests/server/http/test_hit_path.py sends the same requests with HIT_PATH_ENABLED on
and off and compares statuses, headers, bodies, metrics and log lines.

Example:
    Middleware(HitPathMiddleware, settings=settings)  # just inside ProbesMiddleware
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.http.client_id import client_ip
from server.http.codecs import configured_codecs
from server.http.compression import Compressor
from server.http.error_boundary import report_error
from server.http.graphql_request import BadRequest, check_json_content_type
from server.http.negotiation import response_media_type
from server.http.request_id import request_id_for
from server.http.view import DRY_RUN_HEADER, single_response
from server.observability.log_context import trace_id_of
from server.observability.request_facts import RequestFacts, bind_facts, unbind_facts
from server.observability.request_log import log_request
from server.pipeline.fresh_hit import fresh_hit
from server.pipeline.idempotency import IDEMPOTENCY_KEY_HEADER
from server.pipeline.prepared_memo import MAX_SOURCE_BYTES
from server.replicas.read_after import READ_AFTER_HEADER, token_of
from server.services import Services, services_of
from server.settings import Settings

# Headers that send a request another way than a plain hit: the full stack takes it.
_DECLINED = frozenset(
    name.lower().encode("latin-1")
    for name in (
        "origin",
        "if-none-match",
        "cache-control",
        IDEMPOTENCY_KEY_HEADER,
        READ_AFTER_HEADER,
        DRY_RUN_HEADER,
    )
)
_READ = frozenset(
    {
        b"accept",
        b"accept-encoding",
        b"authorization",
        b"content-length",
        b"content-type",
        b"cookie",
        b"traceparent",
        b"x-forwarded-for",
        b"x-request-id",
    }
)


class HitPathMiddleware:
    def __init__(self, app: ASGIApp, *, settings: Settings, path: str = "/graphql") -> None:
        self.app = app
        self.path = path
        self.max_bytes = min(MAX_SOURCE_BYTES, settings.max_request_bytes)
        self.proxies = settings.trusted_proxies
        self.slow_operation_ms = settings.slow_operation_ms
        codecs = configured_codecs(settings)
        self.compressor = (
            None if codecs is None else Compressor(codecs, settings.compression_min_bytes)
        )
        # As the view: with compression off here, entries coded elsewhere go uncoded.
        self.coded_min_bytes = (
            settings.compression_min_bytes if settings.compression_enabled else None
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] != self.path
            or scope["method"] != "POST"
            or scope.get("root_path")
        ):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = self._headers(scope)
        if headers is None:
            await self.app(scope, receive, send)
            return
        services = services_of(scope["app"])
        authorization = headers.get(b"authorization")
        viewer = services.auth_cache.fresh(
            None if authorization is None else authorization.decode("latin-1")
        )
        accept = headers.get(b"accept")
        media_type = response_media_type(None if accept is None else accept.decode("latin-1"))
        if viewer is None or media_type is None:
            await self.app(scope, receive, send)
            return
        messages = await _read_body(receive)
        body = _body_of(messages)
        if body is None:
            await self.app(scope, _replaying(messages, receive), send)
            return
        peer = scope.get("client")
        forwarded = headers.get(b"x-forwarded-for")
        ip = client_ip(
            peer[0] if peer else None,
            None if forwarded is None else forwarded.decode("latin-1"),
            self.proxies,
        )
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")
        facts = RequestFacts(
            request_id=request_id_for(incoming),
            trace_id=trace_id_of(headers.get(b"traceparent", b"").decode("latin-1")),
        )
        scope.setdefault("state", {})["request_id"] = facts.request_id
        token = bind_facts(facts)
        status, declined, responded, finished = 500, False, False, 0.0
        try:
            result = await fresh_hit(body, viewer, client_ip=ip, facts=facts, services=services)
            if result is None:  # nothing done: the full stack takes it
                declined = True
            else:
                answer = single_response(
                    _coding(headers), result, media_type, min_bytes=self.coded_min_bytes
                )
                answer.headers["X-Request-ID"] = facts.request_id
                status = answer.status
                if self.compressor is not None:
                    coding = headers.get(b"accept-encoding")
                    answer.body = self.compressor.code_whole(
                        status,
                        answer.headers,
                        media_type,
                        answer.body,
                        None if coding is None else coding.decode("latin-1"),
                    )
                responded = True
                await answer.respond(send)
                finished = time.perf_counter()
                await answer.finish()
        except Exception as error:
            status = await report_error(scope, send, error, started=responded) or status
        finally:
            try:
                if not declined:
                    self._record(services, status, scope, facts, started, finished)
            finally:
                unbind_facts(token)
        if declined:
            await self.app(scope, _replaying(messages, receive), send)

    def _headers(self, scope: Scope) -> dict[bytes, bytes] | None:
        """The request headers the path reads (the first of a repeated one); None when
        the request is not one it takes."""
        headers: dict[bytes, bytes] = {}
        for name, value in scope["headers"]:
            if name in _DECLINED:
                return None
            if name in _READ and name not in headers:
                headers[name] = value
        length = headers.get(b"content-length")
        if length is None or not length.isdigit() or int(length) > self.max_bytes:
            return None
        cookie = headers.get(b"cookie")
        if cookie is not None and token_of({"cookie": cookie.decode("latin-1")}) is not None:
            return None  # a read-after token in its cookie: a writer reading its write
        content_type = headers.get(b"content-type")
        try:
            check_json_content_type(
                None if content_type is None else content_type.decode("latin-1")
            )
        except BadRequest:
            return None
        return headers

    def _record(
        self,
        services: Services,
        status: int,
        scope: Scope,
        facts: RequestFacts,
        started: float,
        finished: float,
    ) -> None:
        """What HttpMetricsMiddleware and RequestLogMiddleware record of the request."""
        metrics = services.metrics
        if metrics is not None:
            metrics.child(metrics.http_requests, "POST", str(status)).inc()
            metrics.hit_path_answers.inc()
        duration_ms = ((finished or time.perf_counter()) - started) * 1000
        log_request(
            scope,
            facts,
            status,
            "",
            duration_ms,
            slow_operation_ms=self.slow_operation_ms,
            proxies=self.proxies,
        )


def _coding(headers: dict[bytes, bytes]) -> dict[str, str]:
    """The request headers `single_response` reads, as the view reads them."""
    coding = headers.get(b"accept-encoding")
    return {} if coding is None else {"accept-encoding": coding.decode("latin-1")}


async def _read_body(receive: Receive) -> list[Message]:
    """The request's messages up to its last body part (or a disconnect)."""
    messages = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            return messages


def _body_of(messages: list[Message]) -> bytes | None:
    """The whole body the messages carry; None when the client went away first."""
    if messages[-1]["type"] != "http.request":
        return None
    if len(messages) == 1:
        body: bytes = messages[0].get("body", b"")
        return body
    return b"".join(message.get("body", b"") for message in messages)


def _replaying(messages: list[Message], receive: Receive) -> Receive:
    """`receive` as it was before the messages already read: those first, in order."""
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
