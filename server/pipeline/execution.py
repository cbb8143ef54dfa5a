"""Running a prepared operation: a fresh Context, the cost it actually ran up, a timeout.

Every execution goes through `execute`: the one written past the result cache
(mutations, caches off) and the one the cache asks for on a miss or a
revalidation (`producer`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from graphql import ExecutionResult

from loaders import Loaders
from loaders.batch import SessionMaker, operation_reads
from loaders.observer import reset, run_as
from loaders.records import UserRecord
from loaders.tags import entity_tag
from resolvers.idempotency import KeyedWrite
from schema import Context, is_mutation
from schema.executor import QueryTimeout
from server.cache.cached_response import Produced, failed_for_infrastructure, produce_from
from server.cache.caches import Caches
from server.pipeline.answers import error_codes, result_payload
from server.pipeline.request import Prepared
from server.ratelimit.charges import charged_cost
from server.services import Services

MUTATION = "mutation"


@dataclass(frozen=True, slots=True)
class Executed:
    """An execution's result, what it cost and the tags of the entities it read."""

    result: ExecutionResult
    actual: int
    timed_out: bool
    tags: set[str]
    headers: dict[str, str] = field(default_factory=dict)
    """For the answer's headers: a write's read-after token (server/replicas/)."""

    @property
    def unavailable(self) -> bool:
        """It failed because the database could not answer (SERVICE_UNAVAILABLE)."""
        return failed_for_infrastructure(self.result)


async def execute(
    prepared: Prepared,
    *,
    services: Services,
    caches: Caches | None = None,
    idempotency: KeyedWrite | None = None,
) -> Executed:
    """Runs `prepared` with a Context of its own (loaders reading through the entity
    cache of `caches` when given). A timeout keeps the full requested cost: what ran
    until the deadline is not known.

    With replicas, a query reads one (server/replicas/), and runs again on the primary
    when the replica fails it; a mutation's answer carries its read-after token."""
    replicas = services.replicas
    if replicas is None:
        return await _execute(prepared, services, caches, idempotency, services.sessionmaker)
    if is_mutation(prepared.operation):
        executed = await _execute(prepared, services, caches, idempotency, services.sessionmaker)
        executed.headers.update(await replicas.written())
        return executed
    token = prepared.request.read_after
    reads = replicas.reads(token)
    if reads.pinned:
        caches = None  # its entities as they are now, not as cached before its write
    if reads.replica is None:
        return await _execute(prepared, services, caches, idempotency, services.sessionmaker)
    executed = await _execute(prepared, services, caches, idempotency, reads.replica.sessionmaker)
    if replicas.failed(reads.replica, executed.result):
        executed = await _execute(prepared, services, caches, idempotency, services.sessionmaker)
    return executed


async def _execute(
    prepared: Prepared,
    services: Services,
    caches: Caches | None,
    idempotency: KeyedWrite | None,
    sessionmaker: SessionMaker,
) -> Executed:
    loaders = Loaders(
        sessionmaker=sessionmaker,
        dialect=services.dialect,
        entity_cache=None if caches is None else caches.entities,
        observer=services.batch_observer,
    )
    context = Context(
        viewer=prepared.viewer,
        loaders=loaders,
        changes=services.change_feed,
        idempotency=idempotency,
        webhooks=services.webhooks,
    )
    graphql_request = prepared.request.graphql
    # A write's statements count as `mutation` in the metrics (loader batches it
    # starts name their own); this runs in the operation's own task context.
    attributed = run_as(MUTATION) if is_mutation(prepared.operation) else None
    try:
        async with operation_reads(sessionmaker):
            result = await services.executor.execute(
                prepared.document,
                operation_name=graphql_request.operation_name,
                variables=graphql_request.variables,
                context=context,
            )
    except QueryTimeout as timeout:
        return Executed(timeout.result, prepared.price.requested, True, loaders.tags)
    finally:
        if attributed is not None:
            reset(attributed)
    return Executed(
        result, charged_cost(prepared.price, result, prepared.operation), False, loaders.tags
    )


def producer(
    prepared: Prepared, *, services: Services, caches: Caches, private: bool
) -> Callable[[], Awaitable[Produced]]:
    """Runs the operation afresh for the cache: its payload without `extensions`, its tags."""
    user = prepared.viewer.user
    request_id = prepared.request.request_id

    async def produce() -> Produced:
        executed = await execute(prepared, services=services, caches=caches)
        tags = set(executed.tags)
        if private and user is not None:
            tags.add(entity_tag(UserRecord, user.id))  # the viewer's row, read by authentication
        payload = result_payload(executed.result, request_id)
        body = orjson.dumps(payload)
        meta: dict[str, Any] = {"actual": executed.actual}
        if executed.result.errors:  # for the metrics' errors by code (never stored)
            meta["error_codes"] = error_codes(payload)
        if executed.unavailable:
            meta["unavailable"] = True  # never stored: an answer with errors is not
        return produce_from(
            executed.result, body=body, tags=tags, meta=meta, timed_out=executed.timed_out
        )

    return produce
