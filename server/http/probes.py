"""The probes: `GET /livez`, `GET /readyz` and `GET /health` (operations.md, "Endpoints").

`ProbesMiddleware` is pure ASGI and the outermost middleware: a probe is
answered before the request id, the request log, metrics and compression,
so a load balancer's probe every few seconds is neither logged nor counted
as a request (readiness logs its own state changes, server/lifecycle/readiness.py).

- `/livez`: 200 while the process can answer at all; touches nothing.
- `/readyz`: 200 when every check passes, else 503 naming each check; 503 at
  once when shutdown has begun, without asking the database.
- `/health`: the same verdict as `/readyz`, in the body older probes know
  (`{"status": ..., "database": "up" | "down"}`).

Example:
    Middleware(ProbesMiddleware, readiness=readiness, shutdown=shutdown)
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from server.lifecycle.readiness import Readiness, is_ready
from server.lifecycle.shutdown import Shutdown
from server.services import services_of

OK, UNAVAILABLE = "ok", "unavailable"


class ProbesMiddleware:
    def __init__(self, app: ASGIApp, *, readiness: Readiness, shutdown: Shutdown) -> None:
        self.app = app
        self.readiness = readiness
        self.shutdown = shutdown
        self.probes = {"/livez": self._livez, "/readyz": self._readyz, "/health": self._health}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        probe = self.probes.get(scope["path"]) if scope["type"] == "http" else None
        if probe is None or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        status, body = await probe(scope)
        await _answer(send, status, body, head=scope["method"] == "HEAD")

    async def _livez(self, _scope: Scope) -> tuple[int, dict[str, Any]]:
        return 200, {"status": OK}

    async def _readyz(self, scope: Scope) -> tuple[int, dict[str, Any]]:
        checks = await self._checks(scope)
        ready = is_ready(checks)
        return (200 if ready else 503), {"status": OK if ready else UNAVAILABLE, "checks": checks}

    async def _health(self, scope: Scope) -> tuple[int, dict[str, Any]]:
        checks = await self._checks(scope)
        ready = is_ready(checks)
        database = checks.get("database", "unknown")  # unasked once shutdown has begun
        body = {"status": OK if ready else UNAVAILABLE, "database": database}
        return (200 if ready else 503), body

    async def _checks(self, scope: Scope) -> dict[str, str]:
        if self.shutdown.begun:
            return {"shutdown": "begun"}
        services = services_of(scope["app"])
        return await self.readiness.checks(engine=services.engine, redis=services.redis)


async def _answer(send: Send, status: int, body: dict[str, Any], *, head: bool) -> None:
    content = orjson.dumps(body)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(content)).encode()),
        (b"cache-control", b"no-store"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else content})
