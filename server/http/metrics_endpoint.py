"""`GET /metrics` and the count of HTTP requests answered on `/graphql`.

Example:
    Route("/metrics", metrics_page, methods=["GET"])
    Middleware(HttpMetricsMiddleware, path="/graphql")
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.observability.metrics import CONTENT_TYPE, exposition
from server.services import services_of


async def metrics_page(request: Request) -> Response:
    """Prometheus' text format (every worker's figures under --workers N); 404 when
    METRICS_ENABLED is off."""
    metrics = services_of(request).metrics
    if metrics is None:
        return PlainTextResponse("Not Found", status_code=404)
    return Response(exposition(metrics), headers={"Content-Type": CONTENT_TYPE})


class HttpMetricsMiddleware:
    """Counts each answered request to `path` in `storefront_http_requests_total` by
    method and status (pure ASGI: the status is read off the response's start)."""

    def __init__(self, app: ASGIApp, *, path: str = "/graphql") -> None:
        self.app = app
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        metrics = services_of(scope["app"]).metrics
        if metrics is None:
            await self.app(scope, receive, send)
            return
        status = 500  # what the error boundary answers when nothing was sent

        async def send_watching(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_watching)
        finally:
            metrics.child(metrics.http_requests, scope["method"], str(status)).inc()
