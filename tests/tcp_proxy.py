"""A loopback TCP proxy a test can cut, to take a real server's database away from it.

It runs its own event loop in a thread, so it keeps forwarding while the test
blocks. `cut()` closes every open connection and stops listening (new
connections are refused, as by a stopped database); `restore()` listens again.
`slow_down(seconds)` makes every answer of the target, on the connections open
at that moment, wait that many seconds before it is forwarded, as a slow
database would (a connection opened later is not slowed: its handshake alone
would take many delays).

Example:
    with TcpProxy("127.0.0.1", 5432) as proxy:
        url = f"postgresql://postgres@127.0.0.1:{proxy.port}/db"
        ...
        proxy.cut()
        ...
        proxy.restore()
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any

from tests.live_server import HOST, free_port


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._delay = 0.0
        self._slowed_at = 0.0

    def __enter__(self) -> TcpProxy:
        self._thread.start()
        self.restore()
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self.cut()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    def cut(self) -> None:
        """Drops every connection and refuses new ones."""
        self._run(self._cut())

    def restore(self) -> None:
        """Accepts and forwards connections again."""
        self._run(self._listen())

    def slow_down(self, seconds: float) -> None:
        """Delays the answers on the connections open now by `seconds` each."""
        self._delay, self._slowed_at = seconds, time.monotonic()

    def _run(self, work: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(work, self._loop).result(timeout=10)

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._serve, HOST, self.port)

    async def _cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    def _delay_of(self, opened: float) -> float:
        return self._delay if opened < self._slowed_at else 0.0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, upstream_writer))
        opened = time.monotonic()
        await asyncio.gather(
            _pipe(reader, upstream_writer),
            _pipe(upstream_reader, writer, delay=lambda: self._delay_of(opened)),
            return_exceptions=True,
        )
        for end in (writer, upstream_writer):
            self._writers.discard(end)
            end.transport.abort()


async def _pipe(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    *,
    delay: Callable[[], float] = lambda: 0.0,
) -> None:
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        while data := await reader.read(65536):
            if (seconds := delay()) > 0:
                await asyncio.sleep(seconds)
            writer.write(data)
            await writer.drain()
    writer.transport.abort()
