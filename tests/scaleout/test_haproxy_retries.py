"""deploy/haproxy.cfg retries what is safe to run twice, and nothing else.

HAProxy runs from the example configuration in front of two stand-in
instances that pass the `/readyz` check but close every GraphQL connection
without an answer (as a crashed process would: `empty-response`). Counting
how often each request reached them shows what HAProxy sent again: reads
(GET, or a POST document without `mutation`) and mutations carrying an
Idempotency-Key are retried (1 + `retries 3` arrivals); a mutation without a
key, and a hash-only persisted request whose document HAProxy cannot see,
arrive once. Needs haproxy (`make scaleout-deps`): skips without it, fails
under CI.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
import uuid
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from bench.cluster import HAProxy, free_port

RETRIED = 4  # the first attempt and `retries 3`
MARK = "x-test-request"


class Vanishing:
    """HTTP servers that answer `/readyz` 200 and drop every other request unanswered,
    counting each arrival by its MARK header."""

    def __init__(self, count: int) -> None:
        self.ports = [free_port() for _ in range(count)]
        self.arrivals: Counter[str] = Counter()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> Vanishing:
        self._thread.start()

        async def listen() -> list[asyncio.Server]:
            return [await asyncio.start_server(self._serve, "127.0.0.1", p) for p in self.ports]

        self._servers = asyncio.run_coroutine_threadsafe(listen(), self._loop).result(10)
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
                headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in head[1:])}
                await reader.readexactly(int(headers.get("content-length", "0")))
                if head[0].startswith("GET /readyz "):
                    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    await writer.drain()
                    continue
                self.arrivals[headers.get(MARK, "")] += 1
                break  # no answer: the connection closes
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    def __exit__(self, *_exc: object) -> None:
        async def close() -> None:
            for server in self._servers:
                server.close()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


@pytest.fixture(scope="module")
def balancer() -> Iterator[tuple[HAProxy, Vanishing]]:
    if shutil.which("haproxy") is None and not os.access("/usr/sbin/haproxy", os.X_OK):
        message = "haproxy is not installed (`make scaleout-deps`)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    backends = Vanishing(2)
    with backends, HAProxy([f"127.0.0.1:{port}" for port in backends.ports]) as haproxy:
        haproxy.wait_until_up(2, timeout=30)
        yield haproxy, backends


QUERY = {"query": "query Q { products(first: 1) { nodes { id } } }"}
MUTATION = {"query": 'mutation { updateProduct(id: "UHJvZHVjdDox", input: {name: "x"}) { id } }'}
HASH_ONLY = {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "ab" * 32}}}


@pytest.mark.parametrize(
    ("method", "body", "headers", "arrivals"),
    [
        ("GET", None, {}, RETRIED),
        ("POST", QUERY, {}, RETRIED),
        ("POST", MUTATION, {"Idempotency-Key": "k-1"}, RETRIED),
        ("POST", MUTATION, {}, 1),
        ("POST", HASH_ONLY, {}, 1),
    ],
    ids=["get", "post-query", "mutation-with-key", "mutation-without-key", "hash-only"],
)
def test_only_requests_safe_to_repeat_are_sent_again(
    balancer: tuple[HAProxy, Vanishing],
    method: str,
    body: dict[str, object] | None,
    headers: dict[str, str],
    arrivals: int,
) -> None:
    haproxy, backends = balancer
    mark = uuid.uuid4().hex
    response = httpx.request(
        method,
        f"{haproxy.url}/graphql",
        params={"query": "{ categories { name } }"} if method == "GET" else None,
        json=body,
        headers={MARK: mark, **headers},
        timeout=30,
    )
    assert response.status_code == 502  # no instance answered
    assert backends.arrivals[mark] == arrivals, backends.arrivals
