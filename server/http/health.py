"""`/health`: the process is up and its database answers."""

from __future__ import annotations

import logging

from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse

from server.services import services_of

logger = logging.getLogger("storefront.health")


async def health(request: Request) -> JSONResponse:
    try:
        async with services_of(request).engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception:
        logger.exception("health check: database unreachable")
        return JSONResponse({"status": "unavailable", "database": "down"}, status_code=503)
    return JSONResponse({"status": "ok", "database": "up"})
