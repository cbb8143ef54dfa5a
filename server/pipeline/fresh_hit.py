"""A repeated query answered from this process's memory: the pipeline's way for the
HTTP hit path (server/http/hit_path.py).

A client polling a dashboard sends the same bytes again and again, and the answer is
in the near cache. `run` would read the request, check its memo, ask for the viewer,
charge, look the answer up and splice in the cost; every step but the charge then
finds what it needs in memory. `fresh_hit` takes that way directly, and only when
each step would: the request's bytes are in the prepared memo (so their checks
passed before), the viewer is one the auth cache vouches for, and the result cache
holds a fresh answer that needs no round trip (`ResponseCache.peek`). Otherwise it
returns None having changed nothing, and the caller runs the request the usual way.

What it answers is what `run` answers: the same charge (`rate_limited` when the bucket
cannot pay), the same `cached_answer`, the same request facts and metrics. Tracing
is not done here: with tracing on there is no hit path.

Example:
    result = await fresh_hit(body, viewer, client_ip=ip, facts=facts, services=services)
    if result is None:
        ...  # the full pipeline
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from server.cache.cached_response import Served, viewer_scope
from server.http.client_id import client_key
from server.observability.metric_observers import observe_operation
from server.pipeline.run import cached_answer, rate_limited

if TYPE_CHECKING:
    from resolvers.viewer import Viewer
    from server.observability.request_facts import RequestFacts
    from server.pipeline.request import Result
    from server.services import Services


async def fresh_hit(
    source: bytes,
    viewer: Viewer,
    *,
    client_ip: str,
    facts: RequestFacts | None,
    services: Services,
) -> Result | None:
    """The answer to the request read from `source` as a fresh hit, charged; None when
    it is not one that memory alone can answer (nothing was done then)."""
    started = time.perf_counter()
    caches = services.caches
    checked = services.prepared.get(source)
    if caches is None or checked is None or services.tracing is not None:
        return None
    entry = caches.responses.peek(checked.key, scope=viewer_scope(viewer))
    if entry is None:
        return None
    if facts is not None:
        facts.operation(checked.operation, checked.document.sha256)
    requested = checked.price.requested
    client = client_key(viewer=viewer, ip=client_ip)
    bill = await services.throttle.reserve(client=client, viewer=viewer, requested=requested)
    if facts is not None:
        facts.charged(client=client, bill=bill)
    if bill.refused:
        result = rate_limited(bill)
    else:
        result = cached_answer(Served.cached(entry), bill, requested, caches, facts=facts)
    result.operation = checked.operation
    if services.metrics is not None:
        seconds = time.perf_counter() - started
        observe_operation(
            services.metrics, checked.graphql, checked.operation, result, seconds=seconds
        )
    return result
