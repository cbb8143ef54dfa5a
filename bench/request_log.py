"""What the request log costs: server CPU per order-dashboard request, on and off.

Runs the dashboard request in-process through the app's ASGI interface
(PostgreSQL, `medium` scale; `bench.prepare` first), sequentially, in blocks
that take turns (interleaved), and prints the median CPU ms per request
(`time.process_time`) of each mode:

- `bare`: the app with `RequestLogMiddleware` taken out (nothing of the log runs
  but the SQL counter's event, which finds no request and returns);
- `off`: the middleware in place, LOG_LEVEL=warning (facts filled, no line written);
- `text`, `json`: LOG_LEVEL=info, the line written to a file in that format,
  through the handlers' filters (request context, redaction, escaping).

Whole requests vary by about a millisecond on a shared machine, more than the
log costs; so it then times the line alone: `--lines` request lines, with a
dashboard request's fields, written in each format (µs CPU per line).

    .venv/bin/python -m bench.request_log [--database-url URL] [--rounds 15] [--block 40]
        [--lines 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench.common import DASHBOARD, DEFAULT_DATABASE_URL, admin_token, in_process_app
from server.observability.log_config import install_filters
from server.observability.log_format import formatter
from server.observability.redaction import Redactor
from server.observability.request_facts import RequestFacts, bind_facts, unbind_facts
from server.observability.request_log import RequestLogMiddleware

MODES = ("bare", "off", "text", "json")


def _set_mode(handler: logging.Handler, mode: str) -> None:
    root = logging.getLogger()
    root.setLevel(logging.INFO if mode in ("text", "json") else logging.WARNING)
    if mode in ("text", "json"):
        handler.setFormatter(formatter(mode))


async def _block(post: Callable[[], Awaitable[Any]], size: int) -> float:
    started = time.process_time()
    for _ in range(size):
        await post()
    return (time.process_time() - started) * 1000 / size


async def run(
    database_url: str, rounds: int, block: int, n: int, log_path: str
) -> dict[str, list[float]]:
    handler = logging.FileHandler(log_path)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the in-process client's own lines
    logging.getLogger().addHandler(handler)
    install_filters(formatter("text"), Redactor([]))
    uncached = {"CACHE_ENABLED": "false"}  # every request runs: the dashboard as measured
    async with (
        in_process_app(database_url, uncached) as logged,
        in_process_app(database_url, uncached) as bare,
    ):
        # Taken out before the first request builds the middleware stack.
        bare.app.user_middleware = [
            m
            for m in bare.app.user_middleware
            if m.cls != RequestLogMiddleware  # type: ignore[comparison-overlap]
        ]
        token = await admin_token(logged.app)
        variables = {"n": n}

        def poster(app: Any) -> Callable[[], Awaitable[Any]]:
            return lambda: app.post(DASHBOARD, variables, token)

        posts = {"bare": poster(bare), **{m: poster(logged) for m in MODES[1:]}}
        for mode in MODES:  # warm-up: caches, prepared statements, pool
            _set_mode(handler, mode)
            await _block(posts[mode], 10)
        figures: dict[str, list[float]] = {mode: [] for mode in MODES}
        for round_number in range(rounds):
            # Rotate the order too, so no mode always follows the same one.
            order = MODES[round_number % 4 :] + MODES[: round_number % 4]
            for mode in order:
                _set_mode(handler, mode)
                figures[mode].append(await _block(posts[mode], block))
    handler.close()
    return figures


LINE_FIELDS = {
    "method": "POST",
    "path": "/graphql",
    "status": 200,
    "duration_ms": 21.4,
    "operation_type": "query",
    "operation_name": "OrderDashboard",
    "cost": 698,
    "cost_requested": 701,
    "sql_statements": 6,
    "cache_result": "BYPASS",
    "client_id": "user:10001",
}


def line_cost(log_path: str, lines: int) -> dict[str, float]:
    """CPU µs per request line written (filters, format, write), per format."""
    logger = logging.getLogger("storefront.requests")
    logging.getLogger().setLevel(logging.INFO)
    handler = logging.FileHandler(log_path)
    logging.getLogger().addHandler(handler)
    install_filters(formatter("text"), Redactor(["s3cret-password"]))
    token = bind_facts(RequestFacts(request_id="0123456789abcdef0123456789abcdef"))
    costs: dict[str, list[float]] = {"text": [], "json": []}
    try:
        for _ in range(5):
            for log_format in costs:
                handler.setFormatter(formatter(log_format))
                started = time.process_time()
                for _ in range(lines // 5):
                    logger.info("request", extra=LINE_FIELDS)
                costs[log_format].append((time.process_time() - started) * 1e6 / (lines // 5))
    finally:
        unbind_facts(token)
        logging.getLogger().removeHandler(handler)
        handler.close()
    return {log_format: statistics.median(figures) for log_format, figures in costs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--block", type=int, default=40, help="requests per block")
    parser.add_argument("--n", type=int, default=50, help="orders per request")
    parser.add_argument("--lines", type=int, default=20_000, help="lines timed alone")
    args = parser.parse_args()
    with tempfile.NamedTemporaryFile(prefix="bench-request-log-", suffix=".log") as log:
        figures = asyncio.run(run(args.database_url, args.rounds, args.block, args.n, log.name))
        lines = Path(log.name).read_text(encoding="utf-8").count("\n")
    print(f"request lines written: {lines}")
    bare = statistics.median(figures["bare"])
    print(f"{args.rounds} rounds x {args.block} sequential dashboard requests per mode")
    print("mode   CPU ms/request (median)   vs bare")
    for mode in MODES:
        median = statistics.median(figures[mode])
        print(f"{mode:<6} {median:>10.2f}   {median - bare:>+18.2f}")
    with tempfile.NamedTemporaryFile(prefix="bench-request-log-", suffix=".log") as log:
        per_line = line_cost(log.name, args.lines)
    print(f"one request line alone ({args.lines} lines, median of 5 blocks per format):")
    for log_format, micros in per_line.items():
        print(f"{log_format:<6} {micros:>10.1f} µs CPU per line")


if __name__ == "__main__":
    main()
