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
"""

from __future__ import annotations

import logging

from starlette.background import BackgroundTasks
from starlette.requests import Request
from starlette.responses import Response

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
from server.services import services_of

logger = logging.getLogger("storefront.graphql")

# GitHub's `dryRun`: price the operation and report the bucket, run nothing.
DRY_RUN_HEADER = "x-cost-dry-run"
_OPERATION_PARAMS = ("query", "extensions", "documentId")
# What a cached answer says when a mutation ran past the result cache.
_BYPASS = {"X-Cache": "BYPASS", "Cache-Control": "no-store"}


def _response(content: bytes, results: list[Result], *, status: int, media_type: str) -> Response:
    headers: dict[str, str] = {}
    tasks = BackgroundTasks()
    for result in results:
        headers.update(result.headers)
        if result.after is not None:
            tasks.add_task(result.after)
    return Response(
        content,
        status_code=status,
        media_type=media_type,
        headers=headers,
        background=tasks,
    )


async def graphql_endpoint(request: Request) -> Response:
    services = services_of(request)
    settings = services.settings
    accept = request.headers.get("accept")
    names_operation = any(p in request.query_params for p in _OPERATION_PARAMS)
    if settings.graphiql and wants_graphiql(
        method=request.method, accept=accept, has_query=names_operation
    ):
        return graphiql_response(endpoint="/graphql", assets_path="/graphiql/static")
    media_type = response_media_type(accept)
    if media_type is None:
        refused = refusal("Not acceptable: ask for application/json.", BAD_USER_INPUT, 406)
        return _response(refused.content(), [refused], status=406, media_type=APPLICATION_JSON)
    try:
        parsed = await read_request(request, max_batch=settings.max_batch)
    except BadRequest as error:
        bad = refusal(error.message, BAD_USER_INPUT, error.status)
        return _response(bad.content(), [bad], status=bad.status, media_type=media_type)
    headers = request.headers
    peer = request.client.host if request.client else None
    ip = client_ip(peer, headers.get("x-forwarded-for"), settings.trusted_proxies)
    viewer = RequestViewer(
        services=services, authorization=headers.get("authorization"), client_ip=ip
    )
    if isinstance(parsed, GraphQLRequest):
        result = await run(_operation(request, parsed, viewer, ip), services=services)
        # With compression off here, entries coded by another instance go uncoded.
        min_bytes = settings.compression_min_bytes if settings.compression_enabled else None
        return _single_response(request, result, media_type, min_bytes=min_bytes)
    if (keyed_batch := refuse_keyed_batch(has_key=IDEMPOTENCY_KEY_HEADER in headers)) is not None:
        return Response(keyed_batch.body, keyed_batch.status, media_type=media_type)
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
            else _operation(request, entry, viewer, ip)
            for entry in parsed
        ],
        services=services,
    )
    content = b"[" + b",".join(result.content() for result in results) + b"]"
    return _response(content, results, status=200, media_type=media_type)


def _operation(
    request: Request, graphql_request: GraphQLRequest, viewer: RequestViewer, ip: str
) -> OperationRequest:
    """The pipeline's request for one operation of this HTTP request."""
    headers = request.headers
    return OperationRequest(
        graphql=graphql_request,
        viewer=viewer,
        client_ip=ip,
        client=client_info(headers),
        allow_mutations=request.method != "GET",
        dry_run=headers.get(DRY_RUN_HEADER, "").lower() in ("1", "true"),
        idempotency_key=headers.get(IDEMPOTENCY_KEY_HEADER),
        fresh="no-cache" in headers.get("cache-control", "").lower(),
        request_id=request.scope.get("state", {}).get("request_id"),
        facts=request_facts(request),
    )


def _single_response(
    request: Request, result: Result, media_type: str, *, min_bytes: int | None
) -> Response:
    """One operation's answer, with its caching headers; 304 when the client has it.
    A cached answer goes out in the negotiated coding from its stored streams."""
    if result.served is not None:
        cached = cache_headers(result.served, now=result.served_at)
    else:
        cached = _BYPASS if result.bypassed_cache else {}
    headers = for_media_type(cached, media_type)
    result.headers.update(headers)
    if not_modified(request.headers.get("if-none-match"), headers.get("ETag")):
        return _response(b"", [result], status=304, media_type=media_type)
    status = result.status
    if result.validation_failed and media_type != GRAPHQL_RESPONSE_JSON:
        status = 200  # application/json keeps 200 for well-formed requests that fail validation
    content = result.content()
    coded = coded_answer(
        result.served, content, request.headers.get("accept-encoding"), min_bytes=min_bytes
    )
    if coded is not None:
        content = coded.apply(result.headers)
    return _response(content, [result], status=status, media_type=media_type)
