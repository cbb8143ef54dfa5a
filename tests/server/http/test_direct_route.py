"""DirectRoute: GET/POST of its path skip the router; everything else still meets it."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from server.http.direct_route import DirectRoute


class Endpoint:
    """A plain ASGI endpoint (as the GraphQL one is) saying whether the router saw the
    request (it sets `scope["route"]`)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        routed = "routed" if "route" in scope else "direct"
        await PlainTextResponse(f"{scope['method']} {routed}")(scope, receive, send)


endpoint = Endpoint()


async def other(_request: Request) -> PlainTextResponse:
    return PlainTextResponse("other")


def app() -> Starlette:
    return Starlette(
        routes=[Route("/graphql", endpoint, methods=["GET", "POST"]), Route("/other", other)],
        middleware=[
            Middleware(DirectRoute, path="/graphql", endpoint=endpoint, methods=("GET", "POST"))
        ],
    )


async def request(method: str, path: str, *, root_path: str = "") -> httpx.Response:
    transport = httpx.ASGITransport(app=app(), root_path=root_path)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.request(method, path)


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_its_methods_on_its_path_skip_the_router(method: str) -> None:
    answer = await request(method, "/graphql")
    assert (answer.status_code, answer.text) == (200, f"{method} direct")


async def test_other_methods_get_the_routers_405() -> None:
    answer = await request("PUT", "/graphql")
    assert answer.status_code == 405
    assert set(answer.headers["allow"].split(", ")) == {"GET", "HEAD", "POST"}


async def test_head_and_other_paths_go_through_the_router() -> None:
    assert (await request("HEAD", "/graphql")).status_code == 200
    assert (await request("GET", "/other")).text == "other"
    assert (await request("GET", "/graphql/")).status_code == 307  # redirect_slashes


async def test_a_root_path_goes_through_the_router() -> None:
    answer = await request("GET", "/api/graphql", root_path="/api")
    assert (answer.status_code, answer.text) == (200, "GET routed")
