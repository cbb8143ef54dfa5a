"""One operation's way: parse → validate → price → throttle → cache → execute → serialize.

`run` takes an `OperationRequest` (or a batch entry `prepare` already checked)
and returns its `Result`; `run_batch` checks and prices a batch's entries as a
whole, then runs each in order through `run`.

- The document comes from the request's text or a persisted query
  (server/persisted/queries.py); it is held to the document limits and priced
  (QUERY_TOO_DEEP / QUERY_TOO_COMPLEX) before anything runs.
- Its cost is then charged to its client's bucket (429 RATE_LIMITED with
  Retry-After when it cannot pay); every answer says what it cost in
  `extensions.cost`.
- A query goes through the result cache (server/cache/response_cache.py): a hit
  is the stored bytes with this request's `extensions` appended; a miss runs
  once however many ask for it together. A mutation runs past it, once per
  Idempotency-Key (server/pipeline/idempotency.py).

Example:
    result = await run(OperationRequest(graphql=..., viewer=..., client_ip=..., client=...),
                       services=services)
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from graphql import OperationType

from resolvers.errors import Unauthenticated
from schema import RequestError, is_mutation
from schema.cost import QueryTooComplex
from schema.errors import (
    BAD_USER_INPUT,
    RATE_LIMITED,
    UNAUTHENTICATED,
    error_payload,
    format_request_error,
)
from server.cache.cached_response import (
    CacheState,
    ResponseKey,
    Served,
    viewer_scope,
    with_extensions,
)
from server.cache.caches import Caches
from server.http.client_id import client_key
from server.observability.metric_observers import observe_operation
from server.observability.trace_spans import TracedOperation, operation_span
from server.persisted.queries import PersistedQueryError, PersistedQueryMode
from server.pipeline.answers import answer_status, result_payload
from server.pipeline.execution import execute, producer
from server.pipeline.idempotency import Keyed, begin_keyed_write
from server.pipeline.prepared_memo import Checked
from server.pipeline.request import OperationRequest, Prepared, Result
from server.ratelimit.auth_failures import AuthThrottled
from server.ratelimit.charges import actual_cost
from server.replicas.read_after import READ_AFTER_HEADER
from server.services import Services

if TYPE_CHECKING:
    from graphql import OperationDefinitionNode

    from server.observability.request_facts import RequestFacts
    from server.ratelimit.throttle import Bill

# Modes in which a text query's document is its parse alone (AUDIT counts each one,
# TRUSTED depends on the viewer).
_PURE_MODES = (PersistedQueryMode.APQ, PersistedQueryMode.OFF)


def refusal(message: str, code: str, status: int, headers: dict[str, str] | None = None) -> Result:
    """An answer with one error and no data: nothing ran."""
    return Result({"errors": [error_payload(message, code)]}, status, headers or {})


def unauthenticated(error: Unauthenticated | AuthThrottled) -> Result:
    if isinstance(error, AuthThrottled):
        return refusal(error.message, RATE_LIMITED, 429, {"Retry-After": str(error.retry_after)})
    return refusal(error.message, UNAUTHENTICATED, 401, {"WWW-Authenticate": "Bearer"})


async def prepare(request: OperationRequest, *, services: Services) -> Prepared | Result:
    """The request's document, checked and priced, and its viewer; or why it cannot run.

    A plain query whose exact bytes passed every check before is taken from the memo
    (server/pipeline/prepared_memo.py): only its viewer is new."""
    checked = services.prepared.get(request.source)
    if checked is not None:
        if request.facts is not None:
            request.facts.operation(checked.operation, checked.document.sha256)
        try:
            viewer = await request.viewer()
        except (Unauthenticated, AuthThrottled) as error:
            denied = unauthenticated(error)
            denied.operation = checked.operation
            return denied
        return Prepared(
            request, checked.document, checked.operation, checked.variables, viewer, checked.price
        )
    graphql_request = request.graphql
    executor = services.executor
    operation: OperationDefinitionNode | None = None
    refused: Result
    try:
        document = await services.persisted_queries.document(
            graphql_request, viewer=request.viewer, client=request.client
        )
        operation = document.operation(graphql_request.operation_name)
        if request.facts is not None:
            request.facts.operation(operation, document.sha256)
        if not request.allow_mutations and is_mutation(operation):
            refused = refusal(
                "Mutations must be sent with POST.", BAD_USER_INPUT, 405, {"Allow": "POST"}
            )
            refused.operation = operation
            return refused
        executor.validate(document)
        variables = executor.check_variables(operation, graphql_request.variables)
        price = services.cost_analysis.price(document, operation, variables)
        if _memorable(request, operation, services):
            checked = Checked(document, operation, variables, price, graphql_request)
            services.prepared.put(request.source, checked)
        viewer = await request.viewer()
    except PersistedQueryError as error:
        refused = refusal(error.message, error.code, error.status, error.headers)
    except RequestError as error:
        refused = _request_error(error)
    except (Unauthenticated, AuthThrottled) as error:
        refused = unauthenticated(error)
    else:
        return Prepared(request, document, operation, variables, viewer, price)
    refused.operation = operation
    return refused


def _memorable(
    request: OperationRequest, operation: OperationDefinitionNode, services: Services
) -> bool:
    """Whether what `prepare` checked depends on the request's bytes alone: a query sent
    as text, in a persisted-query mode that neither counts nor restricts text."""
    graphql_request = request.graphql
    return (
        request.source is not None
        and operation.operation is OperationType.QUERY
        and graphql_request.extensions is None
        and graphql_request.document_id is None
        and services.persisted_queries.mode in _PURE_MODES
    )


async def run(request: OperationRequest | Prepared, *, services: Services) -> Result:
    """The answer to one operation (prepared first unless it already was), in a span
    of its own when tracing is on."""
    started = time.perf_counter()
    if services.tracing is None:
        result = await _run(request, services, None)
    else:
        facts = request.request.facts if isinstance(request, Prepared) else request.facts
        with operation_span(services.tracing.tracer, facts=facts) as traced:
            result = await _run(request, services, traced)
    observe(request, result, services, started)
    return result


async def _run(
    request: OperationRequest | Prepared, services: Services, traced: TracedOperation | None
) -> Result:
    prepared = (
        request if isinstance(request, Prepared) else await prepare(request, services=services)
    )
    if isinstance(prepared, Result):
        return prepared
    if traced is not None:
        traced.prepared(prepared)
    result = await _charge_and_execute(prepared, services)
    result.operation = prepared.operation
    if traced is not None:
        traced.answered(result)
    return result


def observe(
    request: OperationRequest | Prepared, result: Result, services: Services, started: float
) -> None:
    """The pipeline's one observation point for the metrics (off: nothing). A dry run
    (priced, not run) is no operation."""
    operation_request = request.request if isinstance(request, Prepared) else request
    if services.metrics is not None and not operation_request.dry_run:
        seconds = time.perf_counter() - started
        observe_operation(
            services.metrics, operation_request.graphql, result.operation, result, seconds=seconds
        )


async def run_batch(
    entries: Sequence[OperationRequest | Result], *, services: Services
) -> list[Result]:
    """A batch's answers (an entry already answered passes through): all checked and
    priced as a whole first, then run in order."""
    started = time.perf_counter()
    prepared: list[Prepared | Result] = []
    for entry in entries:
        if isinstance(entry, Result):
            prepared.append(entry)
            continue
        checked = await prepare(entry, services=services)
        if isinstance(checked, Result):
            observe(entry, checked, services, started)  # refused before it could run
        prepared.append(checked)
    # Cheap operations must not add up past the maximum a single one may cost.
    total = sum(p.price.requested for p in prepared if isinstance(p, Prepared))
    maximum = services.cost_analysis.max_cost
    if total > maximum:
        answers = []
        for p in prepared:
            if isinstance(p, Prepared):
                refused = _request_error(QueryTooComplex(total, maximum))
                refused.operation = p.operation
                observe(p, refused, services, started)
                p = refused
            answers.append(p)
        return answers
    # In order, not concurrently: a batch may write and then read what it wrote
    # (a write's read-after token goes with the entries after it).
    results: list[Result] = []
    read_after: str | None = None
    for p in prepared:
        if isinstance(p, Prepared) and read_after is not None:
            p.request = replace(p.request, read_after=read_after)
        results.append(p if isinstance(p, Result) else await run(p, services=services))
        read_after = results[-1].headers.get(READ_AFTER_HEADER, read_after)
    return results


def _request_error(error: RequestError) -> Result:
    payload: dict[str, Any] = {
        "errors": [format_request_error(e, error.code) for e in error.errors]
    }
    if isinstance(error, QueryTooComplex):
        payload["extensions"] = {
            "cost": {"requestedQueryCost": error.requested, "actualQueryCost": 0}
        }
    return Result(payload, 400, validation_failed=error.code != BAD_USER_INPUT)


async def _charge_and_execute(prepared: Prepared, services: Services) -> Result:
    viewer, price, request = prepared.viewer, prepared.price, prepared.request
    throttle = services.throttle
    client = client_key(viewer=viewer, ip=request.client_ip)
    if request.dry_run:
        bill = await throttle.peek(client=client, viewer=viewer, requested=price.requested)
        return Result({"data": None, "extensions": {"cost": bill.cost()}}, 200, bill.headers())
    bill = await throttle.reserve(client=client, viewer=viewer, requested=price.requested)
    if request.facts is not None:
        request.facts.charged(client=client, bill=bill)
    if bill.refused:
        return rate_limited(bill)
    # Only now, charged: an APQ registration costs what the query costs.
    await services.persisted_queries.register(request.graphql, prepared.document, registrant=client)
    caches = services.caches
    if caches is not None and not is_mutation(prepared.operation):
        served = await _through_cache(prepared, services, caches)
        return cached_answer(served, bill, price.requested, caches, facts=request.facts)
    keyed = await begin_keyed_write(
        request.idempotency_key,
        sessionmaker=services.sessionmaker,
        document=prepared.document,
        operation=prepared.operation,
        variables=prepared.variables,
        viewer=viewer,
    )
    if keyed is not None and not isinstance(keyed, Keyed):  # refused, or a stored answer
        bill.settle(price.requested)
        body = keyed.content({"cost": bill.cost()})
        return Result(
            {}, keyed.status, {**bill.headers(), **keyed.headers}, bill.refund, body=body, bill=bill
        )
    executed = await execute(
        prepared, services=services, idempotency=None if keyed is None else keyed.write
    )
    bill.settle(executed.actual)
    payload = result_payload(executed.result, request.request_id)
    status, keyed_headers = (200, {}) if keyed is None else keyed.finish(payload)
    payload["extensions"] = {"cost": bill.cost()}
    status, extra = answer_status(status, unavailable=executed.unavailable)
    return Result(
        payload,
        status,
        {**bill.headers(), **keyed_headers, **extra, **executed.headers},
        bill.refund if keyed is None else keyed.then(bill.refund),
        bypassed_cache=caches is not None,
        bill=bill,
    )


def rate_limited(bill: Bill) -> Result:
    """The 429 of an operation its client's bucket could not pay for."""
    payload: dict[str, Any] = {
        "errors": [error_payload(bill.refusal(), RATE_LIMITED)],
        "extensions": {"cost": bill.cost()},
    }
    return Result(payload, 429, bill.headers(), bill=bill)


def cached_answer(
    served: Served, bill: Bill, requested: int, caches: Caches, *, facts: RequestFacts | None
) -> Result:
    """A query's answer through the result cache, charged what it cost: the served
    bytes with this request's `extensions.cost`."""
    if facts is not None:
        facts.cached(served.state.value)
    bill.settle(actual_cost(served, requested))
    body = with_extensions(served.body, {"cost": bill.cost()})
    unavailable = served.produced is not None and served.produced.meta.get("unavailable")
    status, extra = answer_status(200, unavailable=bool(unavailable))
    return Result(
        {},
        status,
        bill.headers() | extra,
        bill.refund,
        body=body,
        served=served,
        served_at=caches.responses.clock(),
        bill=bill,
    )


async def _through_cache(prepared: Prepared, services: Services, caches: Caches) -> Served:
    """A query's answer from the result cache, or run (once for identical misses) and stored."""
    request, viewer = prepared.request, prepared.viewer
    # The coerced variables: unused ones are dropped, defaults applied, so requests
    # that mean the same share an entry and junk cannot reach the key.
    key = ResponseKey.of(
        prepared.document.sha256, prepared.variables, request.graphql.operation_name
    )
    scope = viewer_scope(viewer)
    # A client that just wrote gets a fresh answer: a cached one may predate its write.
    replicas = services.replicas
    fresh = request.fresh or (replicas is not None and replicas.pins(request.read_after))
    lookup = await caches.responses.lookup(key, scope=scope, read=not fresh)
    if lookup.usable is not None:
        if lookup.state is CacheState.STALE:
            produce_again = producer(
                prepared, services=services, caches=caches, private=lookup.usable.private
            )
            caches.responses.revalidate(key, lookup, scope=scope, produce=produce_again)
        return Served.cached(lookup.usable, lookup.state)
    policy = caches.policies.policy(prepared.document, prepared.operation, prepared.variables)
    produce = producer(prepared, services=services, caches=caches, private=policy.private)
    return await caches.responses.fill(
        key, lookup, policy=policy, scope=scope, produce=produce, share=not fresh
    )
