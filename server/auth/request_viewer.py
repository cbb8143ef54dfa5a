"""Who is asking: the request's viewer, authenticated once and only when first asked."""

from __future__ import annotations

from starlette.requests import Request

from resolvers.auth import authenticate
from resolvers.errors import Unauthenticated
from resolvers.viewer import ANONYMOUS, Viewer
from server.auth.viewer_cache import AuthCache
from server.http.client_id import request_client_key
from server.ratelimit.auth_failures import AuthFailureThrottle


class RequestViewer:
    """Authenticates once per HTTP request, and only when first asked.

    A token the auth cache does not vouch for is held to its address's bucket of
    failed authentications (server/ratelimit/auth_failures.py) before it is looked up.
    """

    def __init__(self, request: Request) -> None:
        self._request = request
        self._viewer: Viewer | None = None

    async def __call__(self) -> Viewer:
        if self._viewer is None:
            state = self._request.app.state
            auth_cache: AuthCache = state.auth_cache
            authorization = self._request.headers.get("authorization")

            async def lookup(authorization: str | None) -> Viewer:
                return await authenticate(
                    sessionmaker=state.sessionmaker, authorization=authorization
                )

            if auth_cache.knows(authorization):
                self._viewer = await auth_cache.viewer(authorization, lookup)
            else:
                failures: AuthFailureThrottle = state.auth_failures
                address = request_client_key(
                    self._request, viewer=ANONYMOUS, proxies=state.settings.trusted_proxies
                )
                await failures.check(address)
                try:
                    self._viewer = await auth_cache.viewer(authorization, lookup)
                except Unauthenticated:
                    await failures.failed(address)
                    raise
        return self._viewer
