"""A soak at full load: RSS over time and latency percentiles, GC default vs tuned.

A real `storefront serve` (one worker, result cache on, in process) serves the order
dashboard of an admin (50 newest orders, ~27 KB) for `--seconds` (default 300), in
alternating segments of `--segment` seconds at `--connections` connections each: cached
hits, then uncached requests (`Cache-Control: no-cache`: executed afresh every time).
RSS (/proc VmRSS) is sampled every `--sample` seconds; the report gives RSS at the start
and end of the load, its peak (VmHWM) and its slope (least squares, MB per minute: over
the whole load, and after the first minute, once caches and pools have grown), the
p50/p99 latency of each kind (medians over its segments, and the worst p99).

Each mode is a server of its own, one after the other: `default` (GC_TUNING=false:
Python's collector as it is) and `tuned` (GC_TUNING=true, GC_THRESHOLDS from
`--thresholds` or the setting's default). The load generator is wrk when installed,
else httpx (slower: it may not saturate the server). The machine may be shared:
compare modes run back to back, and repeat.

    .venv/bin/python -m bench.prepare          # once: create and seed bench_medium
    .venv/bin/python -m bench.soak [--database-url URL] [--seconds 300] [--segment 30]
        [--connections 16] [--modes default,tuned] [--thresholds 50000,20,100]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field

import httpx
import orjson

from bench.common import DASHBOARD, DEFAULT_DATABASE_URL, admin_token, in_process_app
from bench.processes import server, status_kb

WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
if os.getenv("BENCH_FRESH") == "1" then
  wrk.headers["Cache-Control"] = "no-cache"
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  bad = 0
end

function response(status, headers, body)
  if status ~= 200 or string.find(body, '"errors"', 1, true) then
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local bad_total = 0
  for _, thread in ipairs(threads) do
    bad_total = bad_total + thread:get("bad")
  end
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d p50_us=%d p99_us=%d max_us=%d bad=%d\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, bad_total + e.connect + e.read + e.write + e.status + e.timeout))
end
"""

KINDS = ("hit", "uncached")
# Pause between segments: wrk stops with requests in flight, which the server finishes
# first; hits measured behind a queue of uncached requests would time the queue.
SETTLE = 3.0


@dataclass
class Segment:
    kind: str
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    bad: int


@dataclass
class Soak:
    mode: str
    segments: list[Segment] = field(default_factory=list)
    rss_mb: list[tuple[float, float]] = field(default_factory=list)  # (seconds, MB)
    peak_mb: float = 0.0

    def of(self, kind: str) -> list[Segment]:
        return [segment for segment in self.segments if segment.kind == kind]

    def p50(self, kind: str) -> float:
        return statistics.median(segment.p50_ms for segment in self.of(kind))

    def p99(self, kind: str) -> float:
        return statistics.median(segment.p99_ms for segment in self.of(kind))

    def worst_p99(self, kind: str) -> float:
        return max(segment.p99_ms for segment in self.of(kind))

    def rps(self, kind: str) -> float:
        segments = self.of(kind)
        return sum(s.requests for s in segments) / sum(s.seconds for s in segments)

    def slope_mb_per_minute(self, after: float = 0.0) -> float:
        """Least-squares slope of RSS over the samples from `after` seconds on."""
        times, sizes = zip(*((t, mb) for t, mb in self.rss_mb if t >= after), strict=True)
        return statistics.linear_regression(times, sizes).slope * 60


def run_wrk(
    url: str, body: str, token: str, *, fresh: bool, connections: int, seconds: int
) -> Segment:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT)
    threads = min(2, connections)
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s"]
    command += ["-s", script.name, url]
    env = {**os.environ, "BENCH_BODY": body, "BENCH_TOKEN": token, "BENCH_FRESH": str(int(fresh))}
    try:
        output = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=seconds + 60, check=True
        ).stdout
    finally:
        os.unlink(script.name)
    match = re.search(r"^BENCH (.*)$", output, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    values = {key: int(value) for key, value in (kv.split("=") for kv in match[1].split())}
    return Segment(
        "uncached" if fresh else "hit",
        values["requests"],
        values["duration_us"] / 1e6,
        values["p50_us"] / 1000,
        values["p99_us"] / 1000,
        values["bad"],
    )


async def _httpx_load(
    url: str, body: str, token: str, *, fresh: bool, connections: int, seconds: int
) -> Segment:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    if fresh:
        headers["Cache-Control"] = "no-cache"
    latencies: list[float] = []
    bad = 0
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(limits=limits, timeout=10) as client:

        async def worker() -> None:
            nonlocal bad
            while time.monotonic() < deadline:
                started = time.perf_counter()
                response = await client.post(url, content=body, headers=headers)
                latencies.append(time.perf_counter() - started)
                bad += response.status_code != 200 or b'"errors"' in response.content

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    kind = "uncached" if fresh else "hit"
    return Segment(kind, len(latencies), elapsed, cuts[49] * 1000, cuts[98] * 1000, bad)


def load(client: str, url: str, body: str, token: str, **kw: int | bool) -> Segment:
    if client == "wrk":
        return run_wrk(url, body, token, **kw)  # type: ignore[arg-type]
    return asyncio.run(_httpx_load(url, body, token, **kw))  # type: ignore[arg-type]


def soak(
    mode: str,
    env: dict[str, str],
    token: str,
    *,
    client: str,
    seconds: int,
    segment: int,
    connections: int,
    sample: float,
) -> Soak:
    body = orjson.dumps({"query": DASHBOARD, "variables": {"n": 50}}).decode()
    result = Soak(mode)
    with server(env) as (base, process):
        url = f"{base}/graphql"
        # Warm: compiled caches, prepared statements, a stored entry for the hits.
        load(client, url, body, token, fresh=True, connections=2, seconds=3)
        load(client, url, body, token, fresh=False, connections=2, seconds=2)
        stop = threading.Event()
        started = time.monotonic()

        def sample_rss() -> None:
            while True:
                elapsed = time.monotonic() - started
                result.rss_mb.append((elapsed, status_kb(process.pid, "VmRSS") / 1024))
                if stop.wait(sample):
                    return

        sampler = threading.Thread(target=sample_rss, daemon=True)
        sampler.start()
        kinds = iter(KINDS * (seconds // segment // 2 + 1))
        while (left := seconds - (time.monotonic() - started)) >= 1:
            kind = next(kinds)
            part = load(
                client,
                url,
                body,
                token,
                fresh=kind == "uncached",
                connections=connections,
                seconds=int(min(segment, left)),
            )
            result.segments.append(part)
            time.sleep(SETTLE)
            print(
                f"  {mode:8} {kind:8} {part.requests / part.seconds:7.0f} req/s"
                f"  p50 {part.p50_ms:6.2f} ms  p99 {part.p99_ms:7.2f} ms"
                f"  RSS {result.rss_mb[-1][1]:6.1f} MB" + (f"  BAD {part.bad}" if part.bad else ""),
                flush=True,
            )
        stop.set()
        sampler.join()
        result.rss_mb.append((time.monotonic() - started, status_kb(process.pid, "VmRSS") / 1024))
        result.peak_mb = status_kb(process.pid, "VmHWM") / 1024
    return result


def report(soaks: list[Soak], *, seconds: int, connections: int, client: str) -> None:
    print(f"\nsoak: {seconds} s at {connections} connections ({client}), dashboard n=50")
    print(
        "| mode | kind | req/s | p50 ms | p99 ms | p99/p50 | worst p99 ms |"
        "\n| --- | --- | --- | --- | --- | --- | --- |"
    )
    for s in soaks:
        for kind in KINDS:
            print(
                f"| {s.mode} | {kind} | {s.rps(kind):.0f} | {s.p50(kind):.2f} | {s.p99(kind):.2f}"
                f" | {s.p99(kind) / s.p50(kind):.1f} | {s.worst_p99(kind):.2f} |"
            )
    print(
        "\n| mode | RSS start MB | RSS end MB | slope MB/min | from 60 s | peak RSS MB |"
        "\n| --- | --- | --- | --- | --- | --- |"
    )
    for s in soaks:
        print(
            f"| {s.mode} | {s.rss_mb[0][1]:.1f} | {s.rss_mb[-1][1]:.1f}"
            f" | {s.slope_mb_per_minute():+.2f} | {s.slope_mb_per_minute(after=60):+.2f}"
            f" | {s.peak_mb:.1f} |"
        )
    for s in soaks:
        samples = " ".join(f"{mb:.0f}" for _, mb in s.rss_mb)
        print(f"\nRSS MB of `{s.mode}`, one sample per interval: {samples}")


async def mint_token(database_url: str) -> str:
    async with in_process_app(database_url) as app:
        return await admin_token(app.app)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--seconds", type=int, default=300)
    parser.add_argument("--segment", type=int, default=30)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--sample", type=float, default=5.0)
    parser.add_argument("--modes", default="default,tuned")
    parser.add_argument("--thresholds", default=None, help="GC_THRESHOLDS of `tuned`")
    parser.add_argument("--client", choices=("wrk", "httpx"), default=None)
    args = parser.parse_args()
    client = args.client or ("wrk" if shutil.which("wrk") else "httpx")
    token = asyncio.run(mint_token(args.database_url))
    common = {"DATABASE_URL": args.database_url, "CACHE_ENABLED": "true"}
    tuned = {"GC_TUNING": "true"}
    if args.thresholds:
        tuned["GC_THRESHOLDS"] = args.thresholds
    envs = {"default": {"GC_TUNING": "false"}, "tuned": tuned}
    soaks = [
        soak(
            mode,
            {**common, **envs[mode]},
            token,
            client=client,
            seconds=args.seconds,
            segment=args.segment,
            connections=args.connections,
            sample=args.sample,
        )
        for mode in args.modes.split(",")
    ]
    report(soaks, seconds=args.seconds, connections=args.connections, client=client)


if __name__ == "__main__":
    main()
