"""The `/graphql` endpoint: GraphQL over HTTP around the schema's executor.

Status codes follow the GraphQL-over-HTTP spec: a request that fails before
execution is 400 (under `application/json`, well-formed requests that fail
validation get 200, as that media type's legacy clients expect); a bad token is
401; a mutation over GET is 405. Execution errors are 200 with partial data.

Before anything runs, an operation is held to the document limits and priced
(QUERY_TOO_DEEP / QUERY_TOO_COMPLEX, statuses as for validation), then its cost
is charged to its client's bucket (429 RATE_LIMITED with Retry-After when it
cannot pay); every answer says what it cost in `extensions.cost`.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from graphql import ExecutionResult
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from loaders import Loaders
from resolvers.auth import authenticate
from resolvers.errors import Unauthenticated
from schema import Context, Executor, RequestError, is_mutation
from schema.cost import CostAnalysis, QueryTooComplex
from schema.errors import (
    BAD_USER_INPUT,
    RATE_LIMITED,
    UNAUTHENTICATED,
    error_payload,
    format_execution_error,
    format_request_error,
)
from schema.executor import QueryTimeout
from server.client_id import request_client_key
from server.graphiql import graphiql_html
from server.graphql_request import BadRequest, GraphQLRequest, from_body, from_query_string
from server.throttle import Throttle

logger = logging.getLogger("storefront.graphql")

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
APPLICATION_JSON = "application/json"
# GitHub's `dryRun`: price the operation and report the bucket, run nothing.
DRY_RUN_HEADER = "x-cost-dry-run"


def _response_media_type(request: Request) -> str | None:
    """The media type to answer with, from `Accept`; None when none is acceptable."""
    accept = request.headers.get("accept", "")
    if not accept.strip():
        return APPLICATION_JSON
    ranges = [part.split(";", 1)[0].strip().lower() for part in accept.split(",")]
    for media_range in ranges:
        if media_range == GRAPHQL_RESPONSE_JSON:
            return GRAPHQL_RESPONSE_JSON
        if media_range in (APPLICATION_JSON, "application/*", "*/*"):
            return APPLICATION_JSON
    return None


def _wants_graphiql(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "text/html" in accept and "query" not in request.query_params


def _json(
    payload: Any,
    *,
    status: int,
    media_type: str,
    headers: dict[str, str] | None = None,
    background: BackgroundTask | None = None,
) -> Response:
    return Response(
        orjson.dumps(payload),
        status_code=status,
        media_type=media_type,
        headers=headers,
        background=background,
    )


async def graphql_endpoint(request: Request) -> Response:
    if request.method == "GET" and _wants_graphiql(request):
        return HTMLResponse(graphiql_html(endpoint="/graphql", assets_path="/graphiql/static"))
    media_type = _response_media_type(request)
    if media_type is None:
        return _json(
            {
                "errors": [
                    error_payload("Not acceptable: ask for application/json.", BAD_USER_INPUT)
                ]
            },
            status=406,
            media_type=APPLICATION_JSON,
        )
    try:
        graphql_request = (
            from_query_string(request) if request.method == "GET" else await from_body(request)
        )
    except BadRequest as error:
        return _json(
            {"errors": [error_payload(error.message, BAD_USER_INPUT)]},
            status=error.status,
            media_type=media_type,
        )
    return await _run(request, graphql_request, media_type)


async def _run(request: Request, graphql_request: GraphQLRequest, media_type: str) -> Response:
    state = request.app.state
    executor: Executor = state.executor
    cost_analysis: CostAnalysis = state.cost_analysis
    request_id: str | None = request.scope.get("state", {}).get("request_id")
    try:
        document = executor.parse(graphql_request.query)
        operation = document.operation(graphql_request.operation_name)
        if request.method == "GET" and is_mutation(operation):
            return _json(
                {"errors": [error_payload("Mutations must be sent with POST.", BAD_USER_INPUT)]},
                status=405,
                media_type=media_type,
                headers={"Allow": "POST"},
            )
        executor.validate(document)
        variables = executor.check_variables(operation, graphql_request.variables)
        price = cost_analysis.price(document, operation, variables)
    except RequestError as error:
        payload: dict[str, Any] = {
            "errors": [format_request_error(e, error.code) for e in error.errors]
        }
        if isinstance(error, QueryTooComplex):
            payload["extensions"] = {
                "cost": {"requestedQueryCost": error.requested, "actualQueryCost": 0}
            }
        # application/json keeps 200 for well-formed requests that fail validation.
        status = 400 if media_type == GRAPHQL_RESPONSE_JSON or error.code == BAD_USER_INPUT else 200
        return _json(payload, status=status, media_type=media_type)

    try:
        viewer = await authenticate(
            sessionmaker=state.sessionmaker, authorization=request.headers.get("authorization")
        )
    except Unauthenticated as error:
        return _json(
            {"errors": [error_payload(error.message, UNAUTHENTICATED)]},
            status=401,
            media_type=media_type,
            headers={"WWW-Authenticate": "Bearer"},
        )
    throttle: Throttle = state.throttle
    proxies = state.settings.trusted_proxies
    client = request_client_key(request, viewer=viewer, proxies=proxies)
    if request.headers.get(DRY_RUN_HEADER, "").lower() in ("1", "true"):
        bill = await throttle.peek(client=client, viewer=viewer, requested=price.requested)
        return _json(
            {"data": None, "extensions": {"cost": bill.cost()}},
            status=200,
            media_type=media_type,
            headers=bill.headers(),
        )
    bill = await throttle.reserve(client=client, viewer=viewer, requested=price.requested)
    if bill.refused:
        return _json(
            {
                "errors": [error_payload(bill.refusal(), RATE_LIMITED)],
                "extensions": {"cost": bill.cost()},
            },
            status=429,
            media_type=media_type,
            headers=bill.headers(),
        )
    context = Context(
        viewer=viewer,
        loaders=Loaders(sessionmaker=state.sessionmaker, dialect=state.dialect),
        changes=state.change_feed,
    )
    try:
        result = await executor.execute(
            document,
            operation_name=graphql_request.operation_name,
            variables=graphql_request.variables,
            context=context,
        )
        actual = price.plan.actual(result.data)
    except QueryTimeout as timeout:
        # What ran until the deadline is not known: the full requested cost is kept.
        result, actual = timeout.result, price.requested
    bill.settle(actual)
    payload = _result_payload(result, request_id)
    payload["extensions"] = {"cost": bill.cost()}
    return _json(
        payload,
        status=200,
        media_type=media_type,
        headers=bill.headers(),
        background=BackgroundTask(bill.refund),
    )


def _result_payload(result: ExecutionResult, request_id: str | None) -> dict[str, Any]:
    payload: dict[str, Any] = {}
    if result.errors:
        payload["errors"] = [
            format_execution_error(e, request_id=request_id) for e in result.errors
        ]
    payload["data"] = result.data
    return payload
