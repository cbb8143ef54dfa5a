"""OpenTelemetry tracing, set up from the standard `OTEL_*` variables, or not at all.

`tracing_from_env()` reads OTEL_TRACES_EXPORTER (a comma-separated list of
`otlp`, `console`, `none`): with no exporter (unset, empty, `none`, or
OTEL_SDK_DISABLED=true) it returns None and nothing is installed, so tracing
off costs nothing per request. Otherwise it builds one `Tracing`: a
`TracerProvider` (service name from OTEL_SERVICE_NAME, default `storefront`;
sampler from OTEL_TRACES_SAMPLER; OTEL_RESOURCE_ATTRIBUTES) exporting through a
`BatchSpanProcessor` (OTEL_BSP_*). The OTLP exporter is the HTTP/protobuf one
and reads OTEL_EXPORTER_OTLP_* itself.

What a `Tracing` instruments is instrumented per object, with its own
provider, never by patching libraries for the whole process: the ASGI
middleware it returns (one span per request, continuing a W3C `traceparent`),
the engine (one span per SQL statement) and the Redis clients (one per call)
handed to `instrument`. The GraphQL operation and loader batch spans come from
server/observability/trace_spans.py.

Example:
    tracing = tracing_from_env()  # None: tracing is off
    app = create_app(settings, tracing=tracing)
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
from opentelemetry.metrics import NoOpMeter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind, TraceState, get_current_span
from opentelemetry.util.http import get_excluded_urls
from opentelemetry.util.types import Attributes

from server.setting_fields import SettingsError

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from redis.asyncio import Redis
    from sqlalchemy.ext.asyncio import AsyncEngine
    from starlette.middleware import Middleware

EXPORTER_VARIABLE = "OTEL_TRACES_EXPORTER"
EXPORTERS = ("otlp", "console", "none")
DEFAULT_SERVICE_NAME = "storefront"
TRACER_NAME = "storefront"


class Tracing:
    """One process's tracer provider and what it instruments; `shutdown` flushes it."""

    def __init__(self, provider: TracerProvider) -> None:
        # Before any tracer is made: tracers take the provider's sampler when made.
        provider.sampler = WithinTraces(provider.sampler)
        self.provider = provider
        self.tracer = provider.get_tracer(TRACER_NAME)

    def middleware(self) -> list[Middleware]:
        """The outermost middleware: one server span per HTTP request."""
        # Imported here: the pipeline imports this module (through server/services.py)
        # and must load no transport.
        from starlette.middleware import Middleware as StarletteMiddleware

        # The request and response body events would add two spans per request.
        return [
            StarletteMiddleware(
                OpenTelemetryMiddleware,
                tracer_provider=self.provider,
                # e.g. OTEL_PYTHON_EXCLUDED_URLS="health,livez,readyz": no trace per probe
                excluded_urls=get_excluded_urls("ASGI"),
                exclude_spans=["receive", "send"],
            )
        ]

    def instrument(self, *, engine: AsyncEngine, redis: Iterable[Redis | None] = ()) -> None:
        """One span per SQL statement of `engine` and per call of each Redis client."""
        tracer = self.provider.get_tracer("opentelemetry.instrumentation.sqlalchemy")
        # Per engine, not SQLAlchemyInstrumentor(): that one patches create_engine for
        # the whole process and can only be told of one provider.
        pool_usage = NoOpMeter("storefront").create_up_down_counter("db.client.connections.usage")
        EngineTracer(tracer, engine.sync_engine, pool_usage)  # type: ignore[no-untyped-call]
        for client in redis:
            if client is not None:
                RedisInstrumentor.instrument_client(client, tracer_provider=self.provider)

    async def shutdown(self) -> None:
        """Exports what is still queued, then stops (a blocking flush, off the loop)."""
        await asyncio.to_thread(self.provider.shutdown)


class WithinTraces(Sampler):
    """Drops a client span (a SQL statement, a Redis call) that would start a trace of
    its own, e.g. a probe's statement when OTEL_PYTHON_EXCLUDED_URLS skips probes;
    every other span is `sampler`'s (OTEL_TRACES_SAMPLER's) to decide."""

    def __init__(self, sampler: Sampler) -> None:
        self.sampler = sampler

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        parent = get_current_span(parent_context).get_span_context()
        if kind is SpanKind.CLIENT and not parent.is_valid:
            return SamplingResult(Decision.DROP)
        return self.sampler.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"WithinTraces{{{self.sampler.get_description()}}}"


def tracing_from_env() -> Tracing | None:
    """The tracing the `OTEL_*` variables ask for; None when no exporter is set.

    Raises SettingsError (one line naming the variable) for an unknown exporter.
    """
    names = exporter_names(os.environ)
    if not names or os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    return Tracing(tracer_provider(exporters(names)))


def exporter_names(env: Mapping[str, str]) -> list[str]:
    """The exporters named by OTEL_TRACES_EXPORTER, `none` dropped; checked."""
    names = [n.strip().lower() for n in env.get(EXPORTER_VARIABLE, "").split(",") if n.strip()]
    unknown = [name for name in names if name not in EXPORTERS]
    if unknown:
        raise SettingsError(
            f"{EXPORTER_VARIABLE} must be a comma-separated list of"
            f" {', '.join(EXPORTERS)}, got {unknown[0]!r}"
        )
    return [name for name in names if name != "none"]


def exporters(names: Sequence[str]) -> list[SpanExporter]:
    found: list[SpanExporter] = []
    for name in names:
        if name == "console":
            found.append(ConsoleSpanExporter())
        else:  # otlp; imported only when asked for (it brings requests and protobuf)
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            found.append(OTLPSpanExporter())
    return found


def tracer_provider(exporters: Iterable[SpanExporter]) -> TracerProvider:
    """A provider exporting to `exporters` through batch processors. The SDK reads
    the rest of the environment: the sampler (OTEL_TRACES_SAMPLER and its _ARG),
    OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_BSP_*."""
    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    provider = TracerProvider(resource=resource)
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider
