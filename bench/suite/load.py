"""One load run: wrk with a fixed number of connections for a fixed time, against
one server, with that server's CPU (its whole process tree) read around it."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.processes import tree_cpu_ms

# No response() callback: wrk then never hands bodies to Lua, which would cost the
# load generator (sharing the cores with the server) more than the bare endpoint
# itself. Answers are checked for GraphQL errors by the warm-up instead.
WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY")
wrk.headers["Content-Type"] = "application/json"
local token = os.getenv("BENCH_TOKEN")
if token ~= nil and token ~= "" then wrk.headers["Authorization"] = "Bearer " .. token end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d p50_us=%d p99_us=%d"
    .. " connect=%d read=%d write=%d status=%d timeout=%d\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout))
end
"""


ERROR_KINDS = ("connect", "read", "write", "status", "timeout")


@dataclass(frozen=True)
class Sample:
    """One wrk run's figures."""

    requests: int
    seconds: float
    cpu_ms: float  # the server's, all its processes
    p50_ms: float
    p99_ms: float
    error_kinds: dict[str, int]  # wrk's counts: connect, read, write, status (non-2xx), timeout

    @property
    def errors(self) -> int:
        return sum(self.error_kinds.values())

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_ms_per_request(self) -> float:
        return self.cpu_ms / max(self.requests, 1)


def wrk(url: str, body: str, token: str, *, pid: int, connections: int, seconds: float) -> Sample:
    """Runs wrk (2 threads, `connections`) for `seconds` against `url`."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT)
    duration = max(1, round(seconds))
    command = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--timeout", "10s"]
    command += ["-s", script.name, url]
    env = {**os.environ, "BENCH_BODY": body, "BENCH_TOKEN": token}
    try:
        before = tree_cpu_ms(pid)
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=duration + 60, check=True
        )
        used = tree_cpu_ms(pid) - before
    finally:
        Path(script.name).unlink()
    match = re.search(r"^BENCH (.*)$", done.stdout, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"unexpected wrk output:\n{done.stdout}\n{done.stderr}")
    values = {key: int(value) for key, value in (kv.split("=") for kv in match[1].split())}
    return Sample(
        requests=values["requests"],
        seconds=values["duration_us"] / 1e6,
        cpu_ms=used,
        p50_ms=values["p50_us"] / 1000,
        p99_ms=values["p99_us"] / 1000,
        error_kinds={kind: values[kind] for kind in ERROR_KINDS if values[kind]},
    )
