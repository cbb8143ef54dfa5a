"""The `/graphql` endpoint: GraphQL over HTTP around the request pipeline.

Status codes follow the GraphQL-over-HTTP spec: a request that fails before
execution is 400 (under `application/json`, well-formed requests that fail
validation get 200, as that media type's legacy clients expect); a bad token is
401; a mutation over GET is 405. Execution errors are 200 with partial data.

This view reads the HTTP request (GET, POST, a JSON array body is a batch:
server/http/batching.py) into pipeline requests, hands them to
server/pipeline/run.py (checks, cost, rate limit, result cache, execution),
and turns each result back into HTTP: status, media type, headers. A single
operation's answer carries the cache's HTTP headers (Cache-Control, ETag, Age,
X-Cache), and a matching `If-None-Match` gets 304; a cached one goes out in its
stored compressed form (server/http/coded_answer.py).

It is a plain ASGI app rather than a Starlette function endpoint: per request it
builds one `Request` (for the body and query string), reads the headers into one
dict, and sends the answer as the two ASGI messages a `Response` would send, with
no `Response` or `BackgroundTasks` object; a cached hit is mostly bookkeeping, and
these objects were a sizeable part of it (bench/request_overhead.py).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from resolvers.errors import Unauthenticated
from schema.errors import BAD_USER_INPUT
from server.auth.request_viewer import RequestViewer
from server.http.batching import read_request
from server.http.cache_headers import cache_headers, for_media_type, not_modified
from server.http.client_id import client_ip
from server.http.coded_answer import coded_answer
from server.http.graphiql import graphiql_response
from server.http.graphql_request import BadRequest, GraphQLRequest
from server.http.negotiation import (
    APPLICATION_JSON,
    GRAPHQL_RESPONSE_JSON,
    response_media_type,
    wants_graphiql,
)
from server.observability.request_facts import request_facts
from server.persisted.queries import client_info
from server.pipeline.idempotency import IDEMPOTENCY_KEY_HEADER, refuse_keyed_batch
from server.pipeline.request import OperationRequest, Result
from server.pipeline.run import refusal, run, run_batch, unauthenticated
from server.ratelimit.auth_failures import AuthThrottled
from server.replicas.read_after import token_of
from server.services import services_of

logger = logging.getLogger("storefront.graphql")

# GitHub's `dryRun`: price the operation and report the bucket, run nothing.
DRY_RUN_HEADER = "x-cost-dry-run"
_OPERATION_PARAMS = ("query", "extensions", "documentId")
_IDEMPOTENCY_KEY = IDEMPOTENCY_KEY_HEADER.lower()  # as the request's headers are read
# What a cached answer says when a mutation ran past the result cache.
_BYPASS = {"X-Cache": "BYPASS", "Cache-Control": "no-store"}


@dataclass(slots=True)
class Answer:
    """An HTTP answer, sent as the two ASGI messages a Starlette `Response` would send
    (same headers, in the same order), then its results' `after` work in order."""

    status: int
    body: bytes
    media_type: str
    headers: dict[str, str]
    after: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def send(self, send: Send) -> None:
        await self.respond(send)
        await self.finish()

    async def respond(self, send: Send) -> None:
        """Sends the answer."""
        raw = [(_raw_name(k), v.encode("latin-1")) for k, v in self.headers.items()]
        if self.status >= 200 and self.status not in (204, 304):
            raw.append((b"content-length", str(len(self.body)).encode("latin-1")))
        raw.append((b"content-type", self.media_type.encode("latin-1")))
        await send({"type": "http.response.start", "status": self.status, "headers": raw})
        await send({"type": "http.response.body", "body": self.body})

    async def finish(self) -> None:
        """Does the work due once the answer was sent."""
        for work in self.after:
            await work()


@functools.lru_cache(maxsize=256)  # the few header names this app sends, on every answer
def _raw_name(name: str) -> bytes:
    return name.lower().encode("latin-1")


def _response(content: bytes, results: list[Result], *, status: int, media_type: str) -> Answer:
    answer = Answer(status, content, media_type, {})
    for result in results:
        answer.headers.update(result.headers)
        if result.after is not None:
            answer.after.append(result.after)
    return answer


def _headers(scope: Scope) -> dict[str, str]:
    """The request's headers by (lower-case) name; the first of a repeated one, as
    Starlette's `Headers.get` reads it."""
    headers: dict[str, str] = {}
    for name, value in scope["headers"]:
        key = name.decode("latin-1")
        if key not in headers:
            headers[key] = value.decode("latin-1")
    return headers


class GraphQLEndpoint:
    """The `/graphql` endpoint as a plain ASGI app: one Starlette `Request` (its body and
    query string), the headers read once, the answer sent as ASGI messages."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        answer = await _answer(request, _headers(scope))
        if isinstance(answer, Answer):
            await answer.send(send)
        else:
            await answer(scope, receive, send)


graphql_endpoint = GraphQLEndpoint()


async def _answer(request: Request, headers: dict[str, str]) -> Answer | Response:
    services = services_of(request)
    settings = services.settings
    accept = headers.get("accept")
    scope = request.scope
    names_operation = bool(scope["query_string"]) and any(
        p in request.query_params for p in _OPERATION_PARAMS
    )
    method = scope["method"]
    if settings.graphiql and wants_graphiql(
        method=method, accept=accept, has_query=names_operation
    ):
        return graphiql_response(endpoint="/graphql", assets_path="/graphiql/static")
    media_type = response_media_type(accept)
    if media_type is None:
        refused = refusal("Not acceptable: ask for application/json.", BAD_USER_INPUT, 406)
        return _response(refused.content(), [refused], status=406, media_type=APPLICATION_JSON)
    try:
        parsed, source = await read_request(
            request, max_batch=settings.max_batch, content_type=headers.get("content-type")
        )
    except BadRequest as error:
        bad = refusal(error.message, BAD_USER_INPUT, error.status)
        return _response(bad.content(), [bad], status=bad.status, media_type=media_type)
    client = scope.get("client")
    peer = client[0] if client else None
    ip = client_ip(peer, headers.get("x-forwarded-for"), settings.trusted_proxies)
    viewer = RequestViewer(
        services=services, authorization=headers.get("authorization"), client_ip=ip
    )
    if isinstance(parsed, GraphQLRequest):
        operation = _operation(request, headers, parsed, viewer, ip, source)
        result = await run(operation, services=services)
        # With compression off here, entries coded by another instance go uncoded.
        min_bytes = settings.compression_min_bytes if settings.compression_enabled else None
        return single_response(headers, result, media_type, min_bytes=min_bytes)
    if (keyed_batch := refuse_keyed_batch(has_key=_IDEMPOTENCY_KEY in headers)) is not None:
        return Answer(keyed_batch.status, keyed_batch.body, media_type, {})
    if any(not isinstance(entry, BadRequest) for entry in parsed):
        try:
            await viewer()  # one bad token fails the whole batch with 401
        except (Unauthenticated, AuthThrottled) as error:
            refused = unauthenticated(error)
            return _response(
                refused.content(), [refused], status=refused.status, media_type=media_type
            )
    results = await run_batch(
        [
            refusal(entry.message, BAD_USER_INPUT, entry.status)
            if isinstance(entry, BadRequest)
            else _operation(request, headers, entry, viewer, ip, None)
            for entry in parsed
        ],
        services=services,
    )
    content = b"[" + b",".join(result.content() for result in results) + b"]"
    return _response(content, results, status=200, media_type=media_type)


def _operation(
    request: Request,
    headers: dict[str, str],
    graphql_request: GraphQLRequest,
    viewer: RequestViewer,
    ip: str,
    source: bytes | None,
) -> OperationRequest:
    """The pipeline's request for one operation of this HTTP request."""
    scope = request.scope
    return OperationRequest(
        graphql=graphql_request,
        viewer=viewer,
        client_ip=ip,
        client=client_info(headers),
        allow_mutations=scope["method"] != "GET",
        dry_run=headers.get(DRY_RUN_HEADER, "").lower() in ("1", "true"),
        idempotency_key=headers.get(_IDEMPOTENCY_KEY),
        fresh="no-cache" in headers.get("cache-control", "").lower(),
        read_after=token_of(headers),
        request_id=scope.get("state", {}).get("request_id"),
        facts=request_facts(request),
        source=source,
    )


def single_response(
    headers: dict[str, str], result: Result, media_type: str, *, min_bytes: int | None
) -> Answer:
    """One operation's answer, with its caching headers; 304 when the client has it.
    A cached answer goes out in the negotiated coding from its stored streams."""
    if result.served is not None:
        cached = cache_headers(result.served, now=result.served_at)
    else:
        cached = _BYPASS if result.bypassed_cache else {}
    represented = for_media_type(cached, media_type)
    result.headers.update(represented)
    if not_modified(headers.get("if-none-match"), represented.get("ETag")):
        return _response(b"", [result], status=304, media_type=media_type)
    status = result.status
    if result.validation_failed and media_type != GRAPHQL_RESPONSE_JSON:
        status = 200  # application/json keeps 200 for well-formed requests that fail validation
    content = result.content()
    coded = coded_answer(
        result.served, content, headers.get("accept-encoding"), min_bytes=min_bytes
    )
    if coded is not None:
        content = coded.apply(result.headers)
    return _response(content, [result], status=status, media_type=media_type)
