"""Pure-ASGI middleware giving every request an id, echoed in `X-Request-ID`."""

from __future__ import annotations

import os
import re

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from resolvers.events import REQUEST_ID

# An upstream proxy's id is reused only when it is short and harmless to log.
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_ID_BYTES = 16
# Random bytes are drawn from the OS this many at a time: one getrandom syscall per
# request was 3% of a cached hit's CPU (py-spy --native), one per 256 is nothing.
_POOL_BYTES = 256 * _ID_BYTES


class _RandomPool:
    """os.urandom's bytes, drawn in blocks and handed out in slices that never repeat."""

    __slots__ = ("_at", "_block")

    def __init__(self) -> None:
        self.refill()

    def refill(self) -> None:
        self._block = os.urandom(_POOL_BYTES)
        self._at = 0

    def hex(self) -> str:
        at = self._at
        if at == _POOL_BYTES:
            self.refill()
            at = 0
        self._at = at + _ID_BYTES
        return self._block[at : at + _ID_BYTES].hex()


_pool = _RandomPool()
# A forked worker draws its own bytes: ids must not repeat across processes.
os.register_at_fork(after_in_child=_pool.refill)


def request_id_for(incoming: str) -> str:
    """The id of a request that came with `incoming` in `X-Request-ID` ("" if none):
    a new one is 32 random hex digits, as `uuid4().hex` is, from the OS's randomness."""
    return incoming if _SAFE_ID.match(incoming) else _pool.hex()


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = ""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        request_id = request_id_for(incoming)
        scope.setdefault("state", {})["request_id"] = request_id

        header = (b"x-request-id", request_id.encode("latin-1"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                if any(name.lower() == b"x-request-id" for name, _ in headers):
                    MutableHeaders(raw=headers)["X-Request-ID"] = request_id
                else:
                    headers.append(header)
                message["headers"] = headers
            await send(message)

        # Recorded on the events of the writes this request makes (resolvers/events.py).
        token = REQUEST_ID.set(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            REQUEST_ID.reset(token)
