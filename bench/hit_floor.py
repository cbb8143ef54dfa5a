"""The floor under a cached hit: what the per-request duties of a hit cost by
themselves, in a pure ASGI app under the same uvicorn, measured like `make bench`.

Issue 12 asks for a cached hit at ≤ 0.12 ms of server CPU. This app does nothing but
the duties every hit has by the contract, stacked one layer at a time, on the
45 KB of stored JSON (the size of the dashboard's cached answer), so that each
layer's cost and the sum can be read:

1. `bare`: read the request body, answer the stored bytes (the bare endpoint, in
   pure ASGI rather than Starlette);
2. `lookup`: + the entry found by a hash of the body and the Authorization header
   (no JSON parsing, no document, no key building: the least a cache can do);
3. `cost`: + the client's token bucket charged and the answer's
   `extensions.cost` (with `throttleStatus`, which changes per request) spliced
   into the stored bytes, and the three rate-limit headers;
4. `request_id`: + an `X-Request-ID` made for the answer;
5. `metrics`: + the six Prometheus observations a hit makes (prometheus-client);
6. `log`: + the request's log line at `info` (the bench runs at `warning`, where
   Storefront writes none: shown for the production setting).

Each layer runs in its own uvicorn process (`--factory bench.hit_floor:app`,
`HIT_FLOOR_LEVEL`), loaded by wrk with 16 connections as in `make bench`; server
CPU per request comes from /proc. Runs are interleaved; medians of `--runs`.

    .venv/bin/python -m bench.hit_floor [--seconds 5] [--runs 3]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from typing import Any

import orjson

from bench.processes import HOST, cpu_ms, free_port
from bench.result_cache import run_wrk, warm

LEVELS = ("bare", "lookup", "cost", "request_id", "metrics", "log")
LEVEL_ENV = "HIT_FLOOR_LEVEL"
BODY_BYTES = 45_000
"""About the dashboard's cached answer."""
REQUEST = '{"query":"query OrderDashboard { orders(first: 50) { nodes { id } } }"}'
TOKEN = "sf_floor-token"


def _stored_body() -> bytes:
    rows = ",".join(f'{{"id":"T3JkZXI6{i}","status":"PAID"}}' for i in range(2000))
    return f'{{"data":{{"orders":{{"nodes":[{rows}]}}}}}}'.encode()[:BODY_BYTES] + b"}"


class Bucket:
    """A token bucket as the rate limiter keeps one per client (in process)."""

    __slots__ = ("available", "maximum", "restore_rate", "updated")

    def __init__(self, maximum: float, restore_rate: float) -> None:
        self.available = maximum
        self.maximum = maximum
        self.restore_rate = restore_rate
        self.updated = time.monotonic()

    def charge(self, cost: float) -> bool:
        now = time.monotonic()
        self.available = min(
            self.maximum, self.available + (now - self.updated) * self.restore_rate
        )
        self.updated = now
        if self.available < cost:
            return False
        self.available -= cost
        return True


def app() -> Any:
    """The ASGI app of one level (HIT_FLOOR_LEVEL)."""
    level = LEVELS.index(os.environ.get(LEVEL_ENV, "bare"))
    stored = _stored_body()
    entries = {hashlib.blake2b(REQUEST.encode() + f"Bearer {TOKEN}".encode()).digest(): stored}
    buckets: dict[str, Bucket] = {}
    metrics = _metrics() if level >= LEVELS.index("metrics") else None
    logger = _logger() if level >= LEVELS.index("log") else None

    async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
        started = time.perf_counter()
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = stored
        headers = [(b"content-type", b"application/json")]
        if level >= 1:
            authorization = b""
            for name, value in scope["headers"]:
                if name == b"authorization":
                    authorization = value
            found = entries.get(hashlib.blake2b(b"".join(chunks) + authorization).digest())
            if found is None:
                await send({"type": "http.response.start", "status": 404, "headers": []})
                await send({"type": "http.response.body", "body": b""})
                return
            body = found
        if level >= 2:
            bucket = buckets.get(TOKEN)
            if bucket is None:
                bucket = buckets[TOKEN] = Bucket(1e12, 1e9)
            bucket.charge(10)
            available = int(bucket.available)
            cost = {
                "requestedQueryCost": 10,
                "actualQueryCost": 10,
                "throttleStatus": {
                    "maximumAvailable": 1e12,
                    "currentlyAvailable": available,
                    "restoreRate": 1e9,
                },
            }
            body = body[:-1] + b',"extensions":' + orjson.dumps({"cost": cost}) + b"}"
            headers += [
                (b"ratelimit-limit", b"1000000000000"),
                (b"ratelimit-remaining", str(available).encode()),
                (b"ratelimit-reset", b"0"),
                (b"x-cache", b"HIT"),
            ]
        if level >= 3:
            headers.append((b"x-request-id", uuid.uuid4().hex.encode()))
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        if metrics is not None:
            seconds = time.perf_counter() - started
            requests, operations, duration, cache, cost_requested, cost_actual = metrics
            requests.inc()
            operations.inc()
            duration.observe(seconds)
            cache.inc()
            cost_requested.observe(10)
            cost_actual.observe(10)
        if logger is not None:
            logger.info(
                "request",
                extra={
                    "method": "POST",
                    "path": "/graphql",
                    "status": 200,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                    "operation_type": "query",
                    "operation_name": "OrderDashboard",
                    "cost": 10,
                    "cache_result": "HIT",
                    "client_id": "user:1",
                },
            )

    return asgi


def _metrics() -> tuple[Any, ...]:
    """Storefront's own families (server.observability.metrics), one child each."""
    from server.observability.metrics import Metrics

    m = Metrics.create()
    return (
        m.child(m.http_requests, "POST", "200"),
        m.child(m.operations, "query", "OrderDashboard", "ok"),
        m.child(m.operation_duration, "query", "OrderDashboard"),
        m.child(m.cache_requests, "response", "hit"),
        m.child(m.query_cost, "requested"),
        m.child(m.query_cost, "actual"),
    )


def _logger() -> logging.Logger:
    """Storefront's logging as `storefront serve` sets it up (text lines, filters)."""
    from server.observability.log_config import configure_from
    from server.settings import Settings

    configure_from(Settings.from_env({"LOG_LEVEL": "info", "LOG_FORMAT": "text"}))
    return logging.getLogger("storefront.requests")


@contextlib.contextmanager
def _serving(level: str) -> Iterator[tuple[str, int]]:
    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix=f"hit-floor-{level}-", suffix=".log")  # noqa: SIM115
    command = [sys.executable, "-m", "uvicorn", "--factory", "bench.hit_floor:app"]
    command += ["--host", HOST, "--port", str(port), "--log-level", "warning"]
    command += ["--no-access-log", "--lifespan", "off"]
    process = subprocess.Popen(
        command, env={**os.environ, LEVEL_ENV: level}, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://{HOST}:{port}/graphql"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                warm(base, REQUEST, TOKEN, count=1)
                break
            except Exception:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{level}: did not start; see {log.name}") from None
                time.sleep(0.2)
        yield base, process.pid
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    cpu: dict[str, list[float]] = {level: [] for level in LEVELS}
    rps: dict[str, list[float]] = {level: [] for level in LEVELS}
    with contextlib.ExitStack() as stack:
        servers = {level: stack.enter_context(_serving(level)) for level in LEVELS}
        for run in range(args.runs):
            order = LEVELS if run % 2 == 0 else tuple(reversed(LEVELS))
            for level in order:
                url, pid = servers[level]
                before = cpu_ms(pid)
                rate = run_wrk(
                    url, REQUEST, TOKEN, seconds=args.seconds, connections=args.connections
                )
                if rate.bad:
                    raise RuntimeError(f"{level}: {rate.bad} bad answers")
                cpu[level].append((cpu_ms(pid) - before) * 1000 / rate.requests)
                rps[level].append(rate.rps)
    print(f"wrk -c{args.connections}, {args.seconds} s per run, medians of {args.runs} interleaved")
    print(f"{'level':<12} {'CPU µs/req':>10} {'+µs':>6} {'req/s':>8}")
    previous = 0.0
    for level in LEVELS:
        median, rate = statistics.median(cpu[level]), statistics.median(rps[level])
        print(f"{level:<12} {median:>10.1f} {median - previous:>+6.1f} {rate:>8,.0f}")
        previous = median


if __name__ == "__main__":
    main()
