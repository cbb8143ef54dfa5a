"""A TCP proxy to PostgreSQL that can lose a COMMIT's reply, as a dying network does.

Once armed, it forwards the next `COMMIT` to PostgreSQL, waits until PostgreSQL
has answered it (ReadyForQuery), and then closes the client's connection
instead of passing the answer back: the transaction is committed, yet the
client only sees its connection die. It runs its own event loop in a thread,
so a blocking test (a `storefront serve` process polled with httpx) can use it.

Example:
    with CommitDroppingProxy("127.0.0.1", 5432) as proxy:
        url = f"postgresql://postgres@127.0.0.1:{proxy.port}/db"
        proxy.arm()  # the next COMMIT through the proxy loses its reply
"""

from __future__ import annotations

import asyncio
import struct
import threading
from types import TracebackType

# The untyped requests a client may send before its StartupMessage.
_SSL_REQUEST = 80877103
_GSSENC_REQUEST = 80877104
# ReadyForQuery: type 'Z', length 5 (then one status byte).
_READY_FOR_QUERY = b"Z\x00\x00\x00\x05"


class CommitDroppingProxy:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self._upstream = (upstream_host, upstream_port)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._armed = threading.Event()
        self.port = 0
        self.dropped = 0
        """How many COMMIT replies were swallowed."""

    def __enter__(self) -> CommitDroppingProxy:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._connection, "127.0.0.1", 0), self._loop
        ).result(timeout=10)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        async def stop() -> None:
            assert self._server is not None
            self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def arm(self) -> None:
        """The next COMMIT through the proxy commits, and its reply is lost."""
        self._armed.set()

    async def _connection(
        self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter
    ) -> None:
        server_r, server_w = await asyncio.open_connection(*self._upstream)
        swallowing = asyncio.Event()
        upstream = asyncio.create_task(self._client_to_server(client_r, server_w, swallowing))
        try:
            await self._server_to_client(server_r, client_w, swallowing)
        finally:
            upstream.cancel()
            for writer in (client_w, server_w):
                writer.close()

    async def _client_to_server(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, swallowing: asyncio.Event
    ) -> None:
        """Forwards the client's messages, one at a time, watching for COMMIT."""
        try:
            while True:  # untyped startup messages: length, then body
                (length,) = struct.unpack("!I", header := await reader.readexactly(4))
                body = await reader.readexactly(length - 4)
                writer.write(header + body)
                await writer.drain()
                if struct.unpack("!I", body[:4])[0] not in (_SSL_REQUEST, _GSSENC_REQUEST):
                    break
            while True:  # typed messages: one byte of type, length, payload
                header = await reader.readexactly(5)
                payload = await reader.readexactly(struct.unpack("!I", header[1:])[0] - 4)
                if (
                    header[:1] == b"Q"
                    and payload.upper().startswith(b"COMMIT")
                    and self._armed.is_set()
                ):
                    self._armed.clear()
                    swallowing.set()  # before PostgreSQL can answer
                writer.write(header + payload)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def _server_to_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, swallowing: asyncio.Event
    ) -> None:
        """Forwards PostgreSQL's bytes; once swallowing, keeps them until the COMMIT was
        answered, then returns (and the caller cuts both connections)."""
        held = b""
        while chunk := await reader.read(65536):
            if not swallowing.is_set():
                writer.write(chunk)
                await writer.drain()
                continue
            held += chunk
            if _READY_FOR_QUERY in held:
                self.dropped += 1
                return
