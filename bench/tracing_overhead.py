"""What tracing costs a dashboard request: server CPU per request, off and on, interleaved.

Each round starts one `storefront serve` per mode, in turn, and measures CPU ms
per request (utime+stime from /proc, export threads included) over sequential
dashboard requests after a warm-up; the report gives each mode's median over
the rounds. Modes: tracing off (no OTEL_TRACES_EXPORTER); on with every request
sampled (OTEL_TRACES_SAMPLER=always_on) exporting with `console` (JSON into the
server's log file) and with `otlp` over HTTP to bench/otlp_sink.py (decoded and
dropped); and `otlp` with one trace in ten sampled (parentbased_traceidratio 0.1),
what a busy production would run.

    .venv/bin/python -m bench.tracing_overhead --database-url URL [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator

from bench.common import DASHBOARD, DEFAULT_DATABASE_URL
from bench.dashboard import count_statements, measure, warm_up
from bench.processes import HOST, free_port, server

SAMPLED = {"OTEL_TRACES_SAMPLER": "always_on"}


@contextlib.contextmanager
def otlp_sink() -> Iterator[str]:
    """bench/otlp_sink.py on a free port; yields its endpoint, prints its span count."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.otlp_sink", "--port", str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.0)  # it binds at once; give the interpreter time to start
    try:
        yield f"http://{HOST}:{port}"
    finally:
        process.terminate()
        out, _ = process.communicate(timeout=10)
        print(f"otlp sink: {out.strip()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--n", type=int, default=50, help="orders per request")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=300, help="per mode and round")
    parser.add_argument("--warmup", type=int, default=50)
    args = parser.parse_args()
    base_env = {"DATABASE_URL": args.database_url, "CACHE_ENABLED": "false"}
    token, _statements, _checkouts, edges = asyncio.run(
        count_statements(args.database_url, args.n, {"CACHE_ENABLED": "false"})
    )
    if edges != args.n:
        raise SystemExit(f"expected {args.n} orders, got {edges}: is the database seeded?")
    body = json.dumps({"query": DASHBOARD, "variables": {"n": args.n}})
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"machine: {os.cpu_count()} cores, load average {load}")
    figures: dict[str, list[float]] = {"off": [], "console": [], "otlp": [], "otlp 10%": []}
    with otlp_sink() as endpoint:
        modes = {
            "off": {},
            "console": {"OTEL_TRACES_EXPORTER": "console", **SAMPLED},
            "otlp": {
                "OTEL_TRACES_EXPORTER": "otlp",
                "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
                **SAMPLED,
            },
            "otlp 10%": {
                "OTEL_TRACES_EXPORTER": "otlp",
                "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
                "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
                "OTEL_TRACES_SAMPLER_ARG": "0.1",
            },
        }
        for round_number in range(args.rounds):
            for mode, env in modes.items():
                with server(base_env | env) as (base, process):
                    url = f"{base}/graphql"
                    warm_up(url, body, token, args.warmup)
                    phase = measure(
                        mode,
                        process.pid,
                        "httpx",
                        url,
                        body,
                        token,
                        database_url=args.database_url,
                        clients=1,
                        requests=args.requests,
                        max_seconds=300,
                    )
                figures[mode].append(phase.cpu_ms_per_request)
                print(
                    f"round {round_number + 1} {mode:>8}: {phase.cpu_ms_per_request:.2f} CPU ms/req"
                    f"  p50 {phase.p50_ms:.1f} ms",
                    flush=True,
                )
    off = statistics.median(figures["off"])
    print(f"\nmedian CPU ms per dashboard request over {args.rounds} rounds (n={args.n}):")
    for mode, values in figures.items():
        median = statistics.median(values)
        print(f"  {mode:>8}: {median:.2f}  ({(median / off - 1) * 100:+.1f}% vs off)")


if __name__ == "__main__":
    main()
