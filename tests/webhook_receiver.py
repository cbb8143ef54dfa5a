"""A real HTTP receiver of webhooks for tests: a thread serving 127.0.0.1 on a free port.

Each request is recorded (headers, body, when it came); the answer's status comes
from `statuses` (a list consumed in order, then `default`), after `delay` seconds
(requests held at once are counted: `most_in_flight`).

Example:
    with Receiver(statuses=[500], default=200) as receiver:
        url = receiver.url  # http://127.0.0.1:PORT/hook
        receiver.wait_for(2)
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True, slots=True)
class Received:
    headers: dict[str, str]
    body: bytes
    path: str
    at: float = 0.0
    """time.monotonic() on arrival."""


@dataclass
class Receiver:
    statuses: list[int] = field(default_factory=list)
    default: int = 200
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __enter__(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                if len(body) < length:  # the sender died mid-request (a killed worker)
                    self.close_connection = True
                    return  # a cut request is no request: nothing recorded, no answer
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver._lock:
                    receiver.received.append(Received(headers, body, self.path, time.monotonic()))
                    status = receiver.statuses.pop(0) if receiver.statuses else receiver.default
                    receiver.in_flight += 1
                    receiver.most_in_flight = max(receiver.most_in_flight, receiver.in_flight)
                try:
                    time.sleep(receiver.delay)
                    self.send_response(status)
                    self.send_header("content-length", "0")
                    self.end_headers()
                except OSError:  # the sender gave up waiting (its timeout)
                    self.close_connection = True
                finally:
                    with receiver._lock:
                        receiver.in_flight -= 1

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def count(self) -> int:
        with self._lock:
            return len(self.received)
