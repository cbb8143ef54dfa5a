"""The `/graphql` route taken directly, before Starlette's router.

Starlette ends its middleware stack with `ExceptionMiddleware` and the `Router`:
per request they wrap `send` once more, match the path against every route's
regular expression and look up the route's methods. For `GET`/`POST /graphql`
the answer is always the same endpoint, and nothing on its way raises an
`HTTPException` for `ExceptionMiddleware` to turn into a response (unexpected
errors are `ErrorBoundaryMiddleware`'s), so this innermost middleware hands
those requests to the endpoint itself: a cached hit skips three layers
(bench/request_overhead.py). Anything else (other paths and methods, a
`root_path` to strip) goes through the router as before, 405s and redirects
included.

Example:
    Middleware(DirectRoute, path="/graphql", endpoint=graphql_endpoint,
               methods=("GET", "POST"))
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send


class DirectRoute:
    def __init__(
        self, app: ASGIApp, *, path: str, endpoint: ASGIApp, methods: Iterable[str]
    ) -> None:
        self.app = app
        self.path = path
        self.endpoint = endpoint
        self.methods = frozenset(methods)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"] == self.path
            and not scope.get("root_path")
            and scope["method"] in self.methods
        ):
            await self.endpoint(scope, receive, send)
        else:
            await self.app(scope, receive, send)
