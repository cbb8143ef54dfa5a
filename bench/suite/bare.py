"""The floor a GraphQL server is compared with: a bare Starlette endpoint that reads
the request body and answers fixed bytes (the dashboard's answer), nothing else.

    BENCH_BARE_BODY=/path/answer.json python -m uvicorn bench.suite.bare:create_app \\
        --factory --port 8001
"""

from __future__ import annotations

import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

BODY_VARIABLE = "BENCH_BARE_BODY"


def create_app() -> Starlette:
    answer = Path(os.environ[BODY_VARIABLE]).read_bytes()

    async def graphql(request: Request) -> Response:
        await request.body()  # a server has to read the query it answers
        return Response(answer, media_type="application/json")

    async def health(_request: Request) -> Response:
        return Response(b"ok")

    return Starlette(
        routes=[Route("/graphql", graphql, methods=["POST"]), Route("/health", health)]
    )
