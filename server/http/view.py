"""The `/graphql` endpoint: GraphQL over HTTP around the schema's executor.

Status codes follow the GraphQL-over-HTTP spec: a request that fails before
execution is 400 (under `application/json`, well-formed requests that fail
validation get 200, as that media type's legacy clients expect); a bad token is
401; a mutation over GET is 405. Execution errors are 200 with partial data.

The document to run comes from the request's text or from a persisted query
(server/persisted/queries.py); a JSON array body is a batch (server/http/batching.py),
whose operations run in order, each answered on its own.

Before anything runs, an operation is held to the document limits and priced
(QUERY_TOO_DEEP / QUERY_TOO_COMPLEX, statuses as for validation), then its cost
is charged to its client's bucket (429 RATE_LIMITED with Retry-After when it
cannot pay); every answer says what it cost in `extensions.cost`.

A query then goes through the result cache (server/cache/response_cache.py): a hit
is the stored bytes with this request's `extensions` appended; a miss runs
once however many ask for it together. A single operation's answer carries
the cache's HTTP headers (Cache-Control, ETag, Age, X-Cache), and a matching
`If-None-Match` gets 304.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from graphql import OperationDefinitionNode
from starlette.background import BackgroundTasks
from starlette.requests import Request
from starlette.responses import Response

from loaders import Loaders
from resolvers.errors import Unauthenticated
from resolvers.viewer import Viewer
from schema import Context, Document, Executor, RequestError, is_mutation
from schema.cost import CostAnalysis, Price, QueryTooComplex
from schema.errors import (
    BAD_USER_INPUT,
    RATE_LIMITED,
    UNAUTHENTICATED,
    error_payload,
    format_request_error,
)
from schema.executor import QueryTimeout
from server.auth.request_viewer import RequestViewer
from server.cache.cached_response import (
    CacheState,
    Produced,
    ResponseKey,
    Served,
    failed_for_infrastructure,
    produce_from,
    viewer_scope,
    with_extensions,
)
from server.cache.caches import Caches
from server.http.answers import answer_status, result_payload
from server.http.batching import read_request
from server.http.cache_headers import cache_headers, for_media_type, not_modified
from server.http.client_id import request_client_key
from server.http.graphiql import graphiql_response
from server.http.graphql_request import BadRequest, GraphQLRequest
from server.http.idempotency import Keyed, begin_keyed_write, refuse_keyed_batch
from server.http.negotiation import (
    APPLICATION_JSON,
    GRAPHQL_RESPONSE_JSON,
    response_media_type,
    wants_graphiql,
)
from server.observability.request_facts import request_facts
from server.persisted.queries import PersistedQueries, PersistedQueryError, client_info
from server.ratelimit.auth_failures import AuthThrottled
from server.ratelimit.charges import actual_cost, charged_cost
from server.ratelimit.throttle import Throttle

logger = logging.getLogger("storefront.graphql")

# GitHub's `dryRun`: price the operation and report the bucket, run nothing.
DRY_RUN_HEADER = "x-cost-dry-run"
_OPERATION_PARAMS = ("query", "extensions", "documentId")


@dataclass(slots=True)
class Outcome:
    """One operation's answer: its payload, status and headers, and work for afterwards."""

    payload: dict[str, Any]
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    after: Callable[[], Awaitable[None]] | None = None
    body: bytes | None = None
    """The payload already serialized (a cached answer), when it is."""
    cache_headers: dict[str, str] = field(default_factory=dict)
    """HTTP caching headers: they describe one operation's answer, never a batch's."""

    def content(self) -> bytes:
        return self.body if self.body is not None else orjson.dumps(self.payload)


def _error(message: str, code: str, status: int, headers: dict[str, str] | None = None) -> Outcome:
    return Outcome({"errors": [error_payload(message, code)]}, status, headers or {})


def _response(content: bytes, outcomes: list[Outcome], *, status: int, media_type: str) -> Response:
    headers: dict[str, str] = {}
    tasks = BackgroundTasks()
    for outcome in outcomes:
        headers.update(outcome.headers)
        if outcome.after is not None:
            tasks.add_task(outcome.after)
    return Response(
        content,
        status_code=status,
        media_type=media_type,
        headers=headers,
        background=tasks,
    )


async def graphql_endpoint(request: Request) -> Response:
    accept = request.headers.get("accept")
    names_operation = any(p in request.query_params for p in _OPERATION_PARAMS)
    graphiql = request.app.state.settings.graphiql
    if graphiql and wants_graphiql(method=request.method, accept=accept, has_query=names_operation):
        return graphiql_response(endpoint="/graphql", assets_path="/graphiql/static")
    media_type = response_media_type(accept)
    if media_type is None:
        refusal = _error("Not acceptable: ask for application/json.", BAD_USER_INPUT, 406)
        return _response(refusal.content(), [refusal], status=406, media_type=APPLICATION_JSON)
    try:
        parsed = await read_request(request, max_batch=request.app.state.settings.max_batch)
    except BadRequest as error:
        bad = _error(error.message, BAD_USER_INPUT, error.status)
        return _response(bad.content(), [bad], status=bad.status, media_type=media_type)
    viewer = RequestViewer(request)
    if isinstance(parsed, GraphQLRequest):
        outcome = await _operation(request, parsed, media_type, viewer)
        return _single_response(request, outcome, media_type)
    if (keyed_batch := refuse_keyed_batch(request.headers)) is not None:
        return Response(keyed_batch.body, keyed_batch.status, media_type=media_type)
    if any(not isinstance(entry, BadRequest) for entry in parsed):
        try:
            await viewer()  # one bad token fails the whole batch with 401
        except (Unauthenticated, AuthThrottled) as error:
            refusal = _unauthenticated(error)
            return _response(
                refusal.content(), [refusal], status=refusal.status, media_type=media_type
            )
    outcomes = await _batch(request, parsed, media_type, viewer)
    content = b"[" + b",".join(outcome.content() for outcome in outcomes) + b"]"
    return _response(content, outcomes, status=200, media_type=media_type)


def _single_response(request: Request, outcome: Outcome, media_type: str) -> Response:
    """One operation's answer, with its caching headers; 304 when the client has it."""
    headers = for_media_type(outcome.cache_headers, media_type)
    outcome.headers.update(headers)
    if not_modified(request.headers.get("if-none-match"), headers.get("ETag")):
        return _response(b"", [outcome], status=304, media_type=media_type)
    return _response(outcome.content(), [outcome], status=outcome.status, media_type=media_type)


def _unauthenticated(error: Unauthenticated | AuthThrottled) -> Outcome:
    if isinstance(error, AuthThrottled):
        return _error(error.message, RATE_LIMITED, 429, {"Retry-After": str(error.retry_after)})
    return _error(error.message, UNAUTHENTICATED, 401, {"WWW-Authenticate": "Bearer"})


@dataclass(slots=True)
class _Prepared:
    """An operation that passed every check before execution, priced."""

    graphql_request: GraphQLRequest
    document: Document
    operation: OperationDefinitionNode
    variables: dict[str, Any]
    viewer: Viewer
    price: Price


async def _operation(
    request: Request, graphql_request: GraphQLRequest, media_type: str, viewer_of: RequestViewer
) -> Outcome:
    prepared = await _prepare(request, graphql_request, media_type, viewer_of)
    if isinstance(prepared, Outcome):
        return prepared
    return await _execute(request, prepared)


async def _batch(
    request: Request,
    entries: list[GraphQLRequest | BadRequest],
    media_type: str,
    viewer_of: RequestViewer,
) -> list[Outcome]:
    """A batch's outcomes: all checked and priced as a whole first, then run in order."""
    prepared: list[_Prepared | Outcome] = [
        _error(entry.message, BAD_USER_INPUT, entry.status)
        if isinstance(entry, BadRequest)
        else await _prepare(request, entry, media_type, viewer_of)
        for entry in entries
    ]
    # Cheap operations must not add up past the maximum a single one may cost.
    total = sum(p.price.requested for p in prepared if isinstance(p, _Prepared))
    maximum: int = request.app.state.cost_analysis.max_cost
    if total > maximum:
        refusal = _request_error(QueryTooComplex(total, maximum), media_type)
        return [refusal if isinstance(p, _Prepared) else p for p in prepared]
    # In order, not concurrently: a batch may write and then read what it wrote.
    return [p if isinstance(p, Outcome) else await _execute(request, p) for p in prepared]


async def _prepare(
    request: Request, graphql_request: GraphQLRequest, media_type: str, viewer_of: RequestViewer
) -> _Prepared | Outcome:
    state = request.app.state
    executor: Executor = state.executor
    persisted: PersistedQueries = state.persisted_queries
    cost_analysis: CostAnalysis = state.cost_analysis
    try:
        document = await persisted.document(
            graphql_request, viewer=viewer_of, client=client_info(request.headers)
        )
        operation = document.operation(graphql_request.operation_name)
        request_facts(request).operation(operation, document.sha256)  # request log
        if request.method == "GET" and is_mutation(operation):
            message = "Mutations must be sent with POST."
            return _error(message, BAD_USER_INPUT, 405, {"Allow": "POST"})
        executor.validate(document)
        variables = executor.check_variables(operation, graphql_request.variables)
        price = cost_analysis.price(document, operation, variables)
        viewer = await viewer_of()
    except PersistedQueryError as error:
        return _error(error.message, error.code, error.status, error.headers)
    except RequestError as error:
        return _request_error(error, media_type)
    except (Unauthenticated, AuthThrottled) as error:
        return _unauthenticated(error)
    return _Prepared(graphql_request, document, operation, variables, viewer, price)


def _request_error(error: RequestError, media_type: str) -> Outcome:
    payload: dict[str, Any] = {
        "errors": [format_request_error(e, error.code) for e in error.errors]
    }
    if isinstance(error, QueryTooComplex):
        payload["extensions"] = {
            "cost": {"requestedQueryCost": error.requested, "actualQueryCost": 0}
        }
    # application/json keeps 200 for well-formed requests that fail validation.
    status = 400 if media_type == GRAPHQL_RESPONSE_JSON or error.code == BAD_USER_INPUT else 200
    return Outcome(payload, status)


async def _execute(request: Request, prepared: _Prepared) -> Outcome:
    state = request.app.state
    executor: Executor = state.executor
    viewer, price, graphql_request = prepared.viewer, prepared.price, prepared.graphql_request
    throttle: Throttle = state.throttle
    proxies = state.settings.trusted_proxies
    client = request_client_key(request, viewer=viewer, proxies=proxies)
    if request.headers.get(DRY_RUN_HEADER, "").lower() in ("1", "true"):
        bill = await throttle.peek(client=client, viewer=viewer, requested=price.requested)
        return Outcome({"data": None, "extensions": {"cost": bill.cost()}}, 200, bill.headers())
    bill = await throttle.reserve(client=client, viewer=viewer, requested=price.requested)
    request_facts(request).charged(client=client, bill=bill)  # request log
    if bill.refused:
        payload: dict[str, Any] = {
            "errors": [error_payload(bill.refusal(), RATE_LIMITED)],
            "extensions": {"cost": bill.cost()},
        }
        return Outcome(payload, 429, bill.headers())
    # Only now, charged: an APQ registration costs what the query costs.
    persisted: PersistedQueries = state.persisted_queries
    await persisted.register(graphql_request, prepared.document, registrant=client)
    caches: Caches | None = state.caches
    if caches is not None and not is_mutation(prepared.operation):
        served = await _through_cache(request, prepared, caches)
        request_facts(request).cached(served.state.value)  # request log
        bill.settle(actual_cost(served, price.requested))
        body = with_extensions(served.body, {"cost": bill.cost()})
        headers = cache_headers(served, now=caches.responses.clock())
        unavailable = served.produced is not None and served.produced.meta.get("unavailable")
        status, extra = answer_status(200, unavailable=bool(unavailable))
        return Outcome(
            {}, status, bill.headers() | extra, bill.refund, body=body, cache_headers=headers
        )
    keyed = await begin_keyed_write(
        request,
        document=prepared.document,
        operation=prepared.operation,
        variables=prepared.variables,
        viewer=viewer,
    )
    if keyed is not None and not isinstance(keyed, Keyed):  # refused, or a stored answer
        bill.settle(price.requested)
        body = keyed.content({"cost": bill.cost()})
        return Outcome(
            {}, keyed.status, {**bill.headers(), **keyed.headers}, bill.refund, body=body
        )
    context = Context(
        viewer=viewer,
        loaders=Loaders(sessionmaker=state.sessionmaker, dialect=state.dialect),
        changes=state.change_feed,
        idempotency=None if keyed is None else keyed.write,
    )
    try:
        result = await executor.execute(
            prepared.document,
            operation_name=graphql_request.operation_name,
            variables=graphql_request.variables,
            context=context,
        )
        actual = charged_cost(price, result, prepared.operation)
    except QueryTimeout as timeout:
        # What ran until the deadline is not known: the full requested cost is kept.
        result, actual = timeout.result, price.requested
    bill.settle(actual)
    request_id: str | None = request.scope.get("state", {}).get("request_id")
    payload = result_payload(result, request_id)
    status, keyed_headers = (200, {}) if keyed is None else keyed.finish(payload)
    payload["extensions"] = {"cost": bill.cost()}
    headers = {} if caches is None else {"X-Cache": "BYPASS", "Cache-Control": "no-store"}
    status, extra = answer_status(status, unavailable=failed_for_infrastructure(result))
    after = bill.refund if keyed is None else keyed.then(bill.refund)
    return Outcome(
        payload,
        status,
        {**bill.headers(), **keyed_headers, **extra},
        after,
        cache_headers=headers,
    )


async def _through_cache(request: Request, prepared: _Prepared, caches: Caches) -> Served:
    """A query's answer from the result cache, or run (once for identical misses) and stored."""
    graphql_request, viewer = prepared.graphql_request, prepared.viewer
    # The coerced variables: unused ones are dropped, defaults applied, so requests
    # that mean the same share an entry and junk cannot reach the key.
    key = ResponseKey.of(
        prepared.document.sha256, prepared.variables, graphql_request.operation_name
    )
    scope = viewer_scope(viewer)
    fresh = "no-cache" in request.headers.get("cache-control", "").lower()
    lookup = await caches.responses.lookup(key, scope=scope, read=not fresh)
    if lookup.usable is not None:
        if lookup.state is CacheState.STALE:
            produce_again = _producer(request, prepared, caches, private=lookup.usable.private)
            caches.responses.revalidate(key, lookup, scope=scope, produce=produce_again)
        return Served.cached(lookup.usable, lookup.state)
    policy = caches.policies.policy(prepared.document, prepared.operation, prepared.variables)
    produce = _producer(request, prepared, caches, private=policy.private)
    return await caches.responses.fill(
        key, lookup, policy=policy, scope=scope, produce=produce, share=not fresh
    )


def _producer(
    request: Request, prepared: _Prepared, caches: Caches, *, private: bool
) -> Callable[[], Awaitable[Produced]]:
    """Runs the operation afresh for the cache: its payload without `extensions`, its tags."""
    state = request.app.state
    executor: Executor = state.executor
    request_id: str | None = request.scope.get("state", {}).get("request_id")
    user = prepared.viewer.user

    async def produce() -> Produced:
        loaders = Loaders(
            sessionmaker=state.sessionmaker, dialect=state.dialect, entity_cache=caches.entities
        )
        context = Context(viewer=prepared.viewer, loaders=loaders, changes=state.change_feed)
        timed_out = False
        try:
            result = await executor.execute(
                prepared.document,
                operation_name=prepared.graphql_request.operation_name,
                variables=prepared.graphql_request.variables,
                context=context,
            )
            actual = charged_cost(prepared.price, result, prepared.operation)
        except QueryTimeout as timeout:
            result, actual, timed_out = timeout.result, prepared.price.requested, True
        tags = set(loaders.tags)
        if private and user is not None:
            tags.add(f"User:{user.id}")  # the viewer's row, read by authentication
        body = orjson.dumps(result_payload(result, request_id))
        meta: dict[str, Any] = {"actual": actual}
        if failed_for_infrastructure(result):
            meta["unavailable"] = True  # never stored: an answer with errors is not
        return produce_from(result, body=body, tags=tags, meta=meta, timed_out=timed_out)

    return produce
