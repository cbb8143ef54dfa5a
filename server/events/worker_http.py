"""The probes and metrics of `storefront worker --port N`: a worker serves no GraphQL,
but an operator scrapes and probes it like a server (operations.md's endpoints):

- `GET /livez`: 200 while the process runs; touches nothing;
- `GET /readyz`: 200 when the database and Redis (when configured) answer, 503 with
  the failing check named, or once shutdown has begun; the body also carries the
  relay's lag (unpublished outbox rows, the oldest one's age in seconds);
- `GET /metrics`: this worker's `storefront_events_published_total` and
  `storefront_webhook_deliveries_total` (and the other families, at zero);
  404 when METRICS_ENABLED is off.

Served by uvicorn in the worker's own event loop: a handful of probe requests a
minute, never on the relay's path.

Example:
    async with worker_http(settings, port=9100, ...):
        await relay_loop.run()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import uvicorn
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from server.events.status import outbox_status
from server.observability.metrics import CONTENT_TYPE, Metrics, exposition

logger = logging.getLogger("storefront.events")

CHECK_SECONDS = 2.0
"""A check that takes longer than this is `down`."""


class WorkerProbes:
    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        redis: Redis | None,
        metrics: Metrics | None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.redis = redis
        self.metrics = metrics
        self.stopping = False

    async def livez(self, _request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(self, _request: Request) -> Response:
        checks: dict[str, str] = {}
        body: dict[str, Any] = {}
        try:
            async with asyncio.timeout(CHECK_SECONDS), self.sessionmaker() as session:
                await session.execute(text("SELECT 1"))
                _, outbox = await outbox_status(session)
            checks["database"] = "up"
            body["outbox"] = {
                "unpublished": outbox["unpublished"],
                "oldest_unpublished_age_seconds": outbox["oldest_unpublished_age_seconds"],
            }
        except Exception as error:  # any failure is "down", and logged
            logger.warning("worker readiness: database check failed: %r", error)
            checks["database"] = "down"
        if self.redis is not None:
            try:
                async with asyncio.timeout(CHECK_SECONDS):
                    await self.redis.ping()
                checks["redis"] = "up"
            except Exception as error:
                logger.warning("worker readiness: redis check failed: %r", error)
                checks["redis"] = "down"
        ready = not self.stopping and all(state == "up" for state in checks.values())
        status = "ok" if ready else "unavailable"
        return JSONResponse(
            {"status": status, "checks": checks, **body}, status_code=200 if ready else 503
        )

    async def metrics_page(self, _request: Request) -> Response:
        if self.metrics is None:
            return PlainTextResponse("Not Found", status_code=404)
        return Response(exposition(self.metrics), headers={"Content-Type": CONTENT_TYPE})

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/livez", self.livez, methods=["GET"]),
                Route("/readyz", self.readyz, methods=["GET"]),
                Route("/health", self.readyz, methods=["GET"]),
                Route("/metrics", self.metrics_page, methods=["GET"]),
            ]
        )


class _Server(uvicorn.Server):
    """uvicorn, leaving SIGTERM and SIGINT to the worker (its relay pass completes first)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def worker_http(probes: WorkerProbes, *, host: str, port: int) -> AsyncIterator[WorkerProbes]:
    """Serves `probes` on host:port while the block runs (nothing when port is 0)."""
    if port == 0:
        yield probes
        return
    config = uvicorn.Config(
        probes.app(), host=host, port=port, log_config=None, access_log=False, lifespan="off"
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            await task  # a port in use: uvicorn's error, raised here
            raise RuntimeError(f"worker probes: could not listen on {host}:{port}")
        await asyncio.sleep(0.01)
    logger.info("worker probes and metrics on http://%s:%d", host, port)
    try:
        yield probes
    finally:
        probes.stopping = True
        server.should_exit = True
        await task
