"""Who is asking: the request's viewer, authenticated once and only when first asked."""

from __future__ import annotations

from typing import TYPE_CHECKING

from resolvers.auth import authenticate
from resolvers.errors import Unauthenticated
from resolvers.viewer import ANONYMOUS, Viewer
from server.http.client_id import client_key

if TYPE_CHECKING:
    from server.services import Services


class RequestViewer:
    """Authenticates once per request, and only when first asked.

    A token the auth cache does not vouch for is held to its address's bucket of
    failed authentications (server/ratelimit/auth_failures.py) before it is looked up.
    """

    __slots__ = ("_authorization", "_client_ip", "_services", "_viewer")

    def __init__(self, *, services: Services, authorization: str | None, client_ip: str) -> None:
        self._services = services
        self._authorization = authorization
        self._client_ip = client_ip
        self._viewer: Viewer | None = None

    async def __call__(self) -> Viewer:
        if self._viewer is None:
            services, authorization = self._services, self._authorization
            auth_cache = services.auth_cache
            self._viewer = auth_cache.fresh(authorization)
            if self._viewer is not None:
                return self._viewer

            async def lookup(authorization: str | None) -> Viewer:
                return await authenticate(
                    sessionmaker=services.sessionmaker, authorization=authorization
                )

            failures = services.auth_failures
            address = client_key(viewer=ANONYMOUS, ip=self._client_ip)
            await failures.check(address)
            try:
                self._viewer = await auth_cache.viewer(authorization, lookup)
            except Unauthenticated:
                await failures.failed(address)
                raise
        return self._viewer
