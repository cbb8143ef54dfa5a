"""Runs the suite: servers up, answers checked, warm-up, interleaved rounds, flame
graphs; returns the medians.

Every configuration is a long-running server: this checkout (and the baseline's
export) with the result cache off and on, the current code with 2 workers when
worker scaling is measured, and the bare endpoint. Each round runs every
(workload, server) pair once for the same time; odd rounds go in reverse order,
so slow drift of the shared machine falls on both sides alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import orjson
from redis import Redis

from bench.processes import HOST, http_process, server, tree_peak_rss_kb
from bench.suite import flame
from bench.suite.figures import AFTER, BARE, BEFORE, CACHED, UNCACHED, Figures, Results
from bench.suite.load import Sample, wrk
from bench.suite.trees import CodeTree, baseline, current
from bench.suite.workloads import Workload, fixtures, workloads

STATEMENTS_SCRIPT = Path(__file__).with_name("statements.py")
# What a loaded 2-core bench host would otherwise measure instead of the code: under
# 16 connections every uncached request queues past 500 ms and would be logged again
# as slow; Redis, on the same cores, misses 50 ms deadlines and hits turn into
# database runs. Nothing waits 5 s at each server's stop. No request log line (the
# default LOG_LEVEL, info, writes one per request): the peers compared write none, and
# its cost is measured on its own (`bench.request_overhead --request-log FILE`).
SERVER_ENV = {
    "LOG_LEVEL": "warning",
    "SLOW_OPERATION_MS": "600000",
    "REDIS_TIMEOUT_MS": "2000",
    "SHUTDOWN_GRACE_SECONDS": "0",
}


@dataclass(frozen=True)
class Options:
    database_url: str
    redis_url: str
    baseline: str | None
    rounds: int
    seconds: int  # per run
    warmup_seconds: int
    connections: int
    workers_scaling: bool
    flame_seconds: int  # 0: no flame graphs
    output_dir: Path

    def redis_url_of(self, label: str) -> str:
        """The Redis database of the code labelled `label`: the baseline gets the one
        numbered below `redis_url` (above it for database 0). Sharing one would mix two
        versions' cache entries and buckets: a hit on an entry the other version
        stored, in a layout it does not keep near, measured a Redis round trip per
        request (0.48 instead of 0.18 ms)."""
        if label != BEFORE:
            return self.redis_url
        parts = urlsplit(self.redis_url)
        number = int(parts.path.strip("/") or 0)
        return urlunsplit(parts._replace(path=f"/{number - 1 if number else 1}"))


@dataclass(frozen=True)
class Server:
    code: str  # AFTER, BEFORE, "" for the bare endpoint
    cached: bool
    workers: int
    url: str
    pid: int


@dataclass(frozen=True)
class Run:
    workload: Workload
    mode: str
    server: Server

    @property
    def key(self) -> tuple[str, str, str, int]:
        return (self.workload.name, self.mode, self.server.code, self.server.workers)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def count_statements(
    tree: CodeTree, database_url: str, loads: list[Workload]
) -> dict[str, dict[str, int]]:
    """{workload: {"uncached": n, "cached": n}} for the code of `tree`."""
    given = {
        "database_url": database_url,
        "workloads": [
            {"name": w.name, "query": w.query, "variables": w.variables, "token": w.token}
            for w in loads
        ],
    }
    done = subprocess.run(
        [sys.executable, str(STATEMENTS_SCRIPT)],
        input=json.dumps(given),
        env={**os.environ, **tree.env},
        cwd=tree.root,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"counting statements of {tree.label} failed:\n{done.stderr[-3000:]}")
    counts: dict[str, dict[str, int]] = json.loads(done.stdout)
    return counts


def check(run: Run) -> bytes:
    """Two requests: both 200 without GraphQL errors, the second a hit when cached."""
    headers = {"Content-Type": "application/json"}
    if run.workload.token:
        headers["Authorization"] = f"Bearer {run.workload.token}"
    with httpx.Client(timeout=30) as client:
        for _ in range(2):
            response = client.post(run.server.url, content=run.workload.body, headers=headers)
            if response.status_code != 200 or b'"errors"' in response.content:
                raise RuntimeError(f"{run.key}: {response.status_code} {response.text[:500]}")
    if run.mode == CACHED and response.headers.get("X-Cache") != "HIT":
        state = response.headers.get("X-Cache")
        raise RuntimeError(f"{run.key}: expected a cache hit, got X-Cache: {state}")
    return response.content


@contextlib.contextmanager
def storefront(tree: CodeTree, options: Options, *, cached: bool, workers: int) -> Iterator[Server]:
    env = {
        **tree.env,
        **SERVER_ENV,
        "DATABASE_URL": options.database_url,
        "REDIS_URL": options.redis_url_of(tree.label),
        "CACHE_ENABLED": "true" if cached else "false",
    }
    log(f"starting {tree.label} ({'cached' if cached else 'uncached'}, {workers} worker(s))")
    with server(env, workers=workers, cwd=tree.root) as (base, process):
        yield Server(tree.label, cached, workers, f"{base}/graphql", process.pid)


@contextlib.contextmanager
def bare_endpoint(answer: bytes) -> Iterator[Server]:
    with tempfile.NamedTemporaryFile(suffix=".json") as body:
        body.write(answer)
        body.flush()
        command = [sys.executable, "-m", "uvicorn", "bench.suite.bare:create_app", "--factory"]
        command += ["--host", HOST, "--log-level", "warning", "--no-access-log"]
        with http_process(command, {"BENCH_BARE_BODY": body.name}) as (base, process):
            yield Server("", False, 1, f"{base}/graphql", process.pid)


def _median_figures(
    samples: dict[tuple[str, str, str, int], list[Sample]],
    runs: list[Run],
    statements: dict[str, dict[str, dict[str, int]]],
    peaks: dict[Server, float],
) -> list[Figures]:
    figures = []
    for run in runs:
        counts = statements.get(run.server.code, {}).get(run.workload.name, {})
        figures.append(
            Figures.of(
                run.key,
                samples[run.key],
                statements=counts.get("cached" if run.server.cached else "uncached"),
                peak_rss_mb=peaks[run.server],
            )
        )
    return figures


def start_servers(
    stack: contextlib.ExitStack, trees: list[CodeTree], options: Options
) -> dict[tuple[str, bool, int], Server]:
    """{(code, cached, workers): server}: every tree uncached and cached with one worker,
    and the current code with two when scaling is measured."""
    servers = {}
    for tree in trees:
        for cached in (False, True):
            servers[tree.label, cached, 1] = stack.enter_context(
                storefront(tree, options, cached=cached, workers=1)
            )
    if options.workers_scaling:
        for cached in (False, True):
            servers[AFTER, cached, 2] = stack.enter_context(
                storefront(trees[-1], options, cached=cached, workers=2)
            )
    return servers


def plan(
    loads: list[Workload], servers: dict[tuple[str, bool, int], Server]
) -> tuple[list[Run], dict[tuple[str, str], bytes]]:
    """Every (workload, server) run, checked once; and the uncached answers by
    (workload, code). Worker scaling is measured on the dashboard only."""
    runs: list[Run] = []
    answers: dict[tuple[str, str], bytes] = {}
    for workload in loads:
        for (code, cached, workers), target in servers.items():
            if workers > 1 and workload is not loads[0]:
                continue
            run = Run(workload, CACHED if cached else UNCACHED, target)
            answer = check(run)
            if not cached and workers == 1:
                answers[workload.name, code] = answer
            runs.append(run)
    runs.sort(key=lambda run: (loads.index(run.workload), run.mode, run.server.workers))
    return runs, answers


def answer_note(loads: list[Workload], answers: dict[tuple[str, str], bytes]) -> str:
    """Compares `data` and `errors`: `extensions` carry each server's own rate-limit
    view (with leased budgets, `currentlyAvailable` is the process's), not the answer."""

    def answer(name: str, code: str) -> bytes:
        body = orjson.loads(answers[name, code])
        return orjson.dumps({"data": body.get("data"), "errors": body.get("errors")})

    differing = [w.name for w in loads if answer(w.name, BEFORE) != answer(w.name, AFTER)]
    if differing:
        return "answers (data, errors) differ between before and after for: " + ", ".join(differing)
    return "answers (data, errors): byte-identical between before and after for every workload"


def measure(runs: list[Run], options: Options) -> dict[tuple[str, str, str, int], list[Sample]]:
    """A warm-up run of each, then the interleaved rounds."""
    log(f"warm-up: {len(runs)} runs of {options.warmup_seconds} s")
    for run in runs:
        sample(run, options, options.warmup_seconds)
    samples: dict[tuple[str, str, str, int], list[Sample]] = defaultdict(list)
    for round_ in range(options.rounds):
        for run in runs if round_ % 2 == 0 else reversed(runs):
            measured = sample(run, options, options.seconds)
            samples[run.key].append(measured)
            log(
                f"round {round_ + 1}/{options.rounds} {run.key}: {measured.rps:,.0f} req/s,"
                f" {measured.cpu_ms_per_request:.3f} ms CPU/req, p99 {measured.p99_ms:.1f} ms"
                + (f", errors: {measured.error_kinds}" if measured.errors else "")
            )
    return samples


def flame_graphs(
    trees: list[CodeTree],
    servers: dict[tuple[str, bool, int], Server],
    dashboard: Workload,
    options: Options,
    date: str,
) -> dict[str, str]:
    """{code: SVG file name}: each tree's uncached server under the dashboard load."""
    written = {}
    for tree in trees:
        target = servers[tree.label, False, 1]
        name = f"{date}-dashboard-{tree.label}.svg"
        log(f"py-spy: {name}")
        flame.record(
            options.output_dir / name,
            pid=target.pid,
            url=target.url,
            body=dashboard.body,
            token=dashboard.token,
            seconds=options.flame_seconds,
            connections=options.connections,
        )
        written[tree.label] = name
    return written


def run_suite(options: Options, *, command: str, date: str) -> Results:
    load_before = os.getloadavg()
    started = time.monotonic()
    loads = workloads(asyncio.run(fixtures(options.database_url)))
    for label in (AFTER, BEFORE):  # no entries left from other code or runs
        Redis.from_url(options.redis_url_of(label)).flushdb()
    with contextlib.ExitStack() as stack:
        trees = [current()]
        if options.baseline:
            trees.insert(0, stack.enter_context(baseline(options.baseline)))
        statements = {t.label: count_statements(t, options.database_url, loads) for t in trees}
        servers = start_servers(stack, trees, options)
        runs, answers = plan(loads, servers)
        bare = stack.enter_context(bare_endpoint(answers[loads[0].name, AFTER]))
        runs.append(Run(loads[0], BARE, bare))
        check(runs[-1])
        notes = [f"code: {tree.label} = {tree.description}" for tree in trees]
        if len(trees) > 1:
            notes.append(answer_note(loads, answers))
        samples = measure(runs, options)
        flames = (
            flame_graphs(trees, servers, loads[0], options, date) if options.flame_seconds else {}
        )
        peaks = {s: tree_peak_rss_kb(s.pid) / 1024 for s in {run.server for run in runs}}
    notes += machine_notes(options, load_before, os.getloadavg(), time.monotonic() - started)
    figures = _median_figures(samples, runs, statements, peaks)
    return Results(date, command, figures, notes, flames)


def sample(run: Run, options: Options, seconds: int) -> Sample:
    return wrk(
        run.server.url,
        run.workload.body,
        run.workload.token,
        pid=run.server.pid,
        connections=options.connections,
        seconds=seconds,
    )


def machine_notes(
    options: Options, load_before: tuple[float, ...], load_after: tuple[float, ...], elapsed: float
) -> list[str]:
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    first = (wrk_version.stdout or wrk_version.stderr).splitlines()[:1]
    return [
        f"machine: {os.cpu_count()} cores ({model}), shared; load average"
        f" {load_before[0]:.2f} before, {load_after[0]:.2f} after; Python {sys.version.split()[0]};"
        f" {first[0] if first else 'wrk'}",
        f"method: wrk -t2 -c{options.connections}, {options.seconds} s per run, {options.rounds}"
        f" interleaved round(s) (odd rounds reversed), medians; {options.warmup_seconds} s warm-up"
        " per run first; CPU = utime+stime of the server's process tree (/proc) per request;"
        " statements counted in-process on the second identical request; peak RSS = largest"
        " VmHWM of one server process",
        "servers: `storefront serve` (one uvicorn worker unless stated), PostgreSQL `medium`"
        " seed (bench_medium), REDIS_URL set, rate limits raised out of reach, "
        + " ".join(f"{k}={v}" for k, v in SERVER_ENV.items())
        + "; uncached ="
        " CACHE_ENABLED=false, cached hit = CACHE_ENABLED=true after the entry is filled"
        " (X-Cache: HIT checked)",
        f"suite took {elapsed / 60:.1f} min",
    ]
