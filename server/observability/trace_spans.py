"""The spans only Storefront knows to open: one per GraphQL operation, one per loader batch.

An operation's span is opened before its document is known (so the persisted
query lookup, parsing and authentication fall inside it) and renamed once it
is, after OpenTelemetry's GraphQL conventions: `query OrderDashboard`, with
`graphql.operation.type`, `graphql.operation.name` and `graphql.document`,
plus Storefront's own `storefront.document.hash`, `storefront.cost.requested`,
`storefront.cost.actual` and `storefront.cache.result`.

A loader batch's span (`loader product_by_id`, with `storefront.loader.name`
and `storefront.loader.keys`) comes through the loaders' `BatchObserver` seam;
the SQL it sends runs inside it, so its statement spans are its children.

Example:
    with operation_span(tracer, facts=request.facts) as traced:
        traced.prepared(prepared)
        ...
        traced.answered(result)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from opentelemetry.trace import Span, SpanKind, Tracer
from opentelemetry.util.types import AttributeValue

if TYPE_CHECKING:
    from server.observability.request_facts import RequestFacts
    from server.pipeline.request import Prepared, Result

UNNAMED_OPERATION = "GraphQL Operation"  # the conventions' name before the operation is known


class TracedOperation:
    """The span of one operation, told what the pipeline learns as it goes."""

    def __init__(self, span: Span, facts: RequestFacts | None) -> None:
        self.span = span
        self.facts = facts
        # A batch's operations share the request's facts: only bills added from
        # here on are this operation's.
        self.bills_before = len(facts.bills) if facts is not None else 0

    def prepared(self, prepared: Prepared) -> None:
        operation = prepared.operation
        kind = operation.operation.value
        name = operation.name.value if operation.name is not None else ""
        self.span.update_name(f"{kind} {name}" if name else kind)
        source = prepared.document.ast.loc.source.body if prepared.document.ast.loc else ""
        self.span.set_attributes(
            {
                "graphql.operation.type": kind,
                "graphql.operation.name": name,
                "graphql.document": source,
                "storefront.document.hash": prepared.document.sha256,
                "storefront.cost.requested": prepared.price.requested,
            }
        )

    def answered(self, result: Result) -> None:
        if result.served is not None:
            self.span.set_attribute("storefront.cache.result", result.served.state.value)
        facts = self.facts
        if facts is not None and len(facts.bills) > self.bills_before:
            self.span.set_attribute("storefront.cost.actual", facts.bills[-1].actual)


@contextlib.contextmanager
def operation_span(tracer: Tracer, *, facts: RequestFacts | None) -> Iterator[TracedOperation]:
    """The current span for one operation, ended (with any exception recorded) on exit."""
    with tracer.start_as_current_span(UNNAMED_OPERATION, kind=SpanKind.INTERNAL) as span:
        yield TracedOperation(span, facts)


class LoaderSpans:
    """A `BatchObserver` (loaders/observer.py) opening one span per loader batch."""

    def __init__(self, tracer: Tracer) -> None:
        self.tracer = tracer

    @contextlib.contextmanager
    def batch(self, loader: str, keys: int) -> Iterator[None]:
        attributes: dict[str, AttributeValue] = {
            "storefront.loader.name": loader,
            "storefront.loader.keys": keys,
        }
        with self.tracer.start_as_current_span(f"loader {loader}", attributes=attributes):
            yield
