"""Graceful shutdown: readiness drops at the first signal, the server stops after a grace.

uvicorn stops accepting connections as soon as it handles SIGTERM, before a
load balancer has noticed that the instance is going away: the requests the
balancer still sends meanwhile would be refused. So while the app is served,
`Shutdown.handling_signals` stands in front of uvicorn's own handler (installed
with `signal.signal`, which uvicorn restores when it exits):

- SIGTERM marks shutdown begun (`/readyz` answers 503 from then on) and hands the
  signal to uvicorn only `grace` seconds later (SHUTDOWN_GRACE_SECONDS); meanwhile
  new connections are still served. uvicorn then stops accepting, lets requests in
  flight finish (up to SHUTDOWN_TIMEOUT_SECONDS) and runs the lifespan's shutdown,
  which closes the pools and Redis;
- SIGINT (Ctrl+C), or a second SIGTERM during the grace, goes to uvicorn at once.

It runs in the lifespan, i.e. in each process that serves the app: under
`storefront serve --workers N` uvicorn's supervisor forwards SIGTERM to every
worker, and each worker drains as above.

Example:
    shutdown = Shutdown()
    with shutdown.handling_signals(grace=5):
        ...  # serve; `shutdown.begun` turns True at the first SIGTERM
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType

logger = logging.getLogger("storefront.shutdown")

Handler = Callable[[int, FrameType | None], object]


class Shutdown:
    """Whether this process has begun shutting down (readiness reads it)."""

    def __init__(self) -> None:
        self.begun = False

    @contextlib.contextmanager
    def handling_signals(self, *, grace: float) -> Iterator[None]:
        """Within the block, SIGTERM and SIGINT begin the shutdown (module docstring).

        Needs the running event loop's thread to be the main thread (signals are
        only delivered there); elsewhere, e.g. under a test's ASGI client, the
        signals are left alone and `begun` stays False.
        """
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        loop = asyncio.get_running_loop()
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

        def handle(sig: int, frame: FrameType | None) -> None:
            then = previous[signal.Signals(sig)]
            if not callable(then):  # SIG_DFL / SIG_IGN: nobody to stop; not ours to drain
                signal.signal(sig, then)
                signal.raise_signal(sig)
                return
            if self.begun or sig != signal.SIGTERM or grace <= 0:
                self.begun = True
                then(sig, frame)
                return
            self.begun = True
            logger.warning(
                "SIGTERM: not ready from now on; still serving for %g s"
                " (SHUTDOWN_GRACE_SECONDS), then finishing the requests in flight",
                grace,
            )
            # Called from a signal handler: reach the loop the thread-safe way.
            loop.call_soon_threadsafe(loop.call_later, grace, _forward, then, sig)

        for sig in previous:
            signal.signal(sig, handle)
        try:
            yield
        finally:
            for sig, then in previous.items():
                if signal.getsignal(sig) is handle:
                    signal.signal(sig, then)


def _forward(handler: Handler, sig: int) -> None:
    handler(sig, None)
