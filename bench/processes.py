"""A real server process for the benchmarks, and readings of its /proc entries."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from bench.common import UNTHROTTLED

HOST = "127.0.0.1"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def cpu_ms(pid: int) -> float:
    """utime + stime of process `pid`, in milliseconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / CLOCK_TICKS


def status_kb(pid: int, key: str) -> int:
    """A `/proc/<pid>/status` figure in kB, e.g. VmRSS or VmHWM (peak RSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {key} in /proc/{pid}/status")


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it (uvicorn's workers under its supervisor)."""
    found = [pid]
    for current in found:
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                found.extend(int(child) for child in task.read_text().split())
    return found


def tree_cpu_ms(pid: int) -> float:
    """utime + stime summed over `pid` and its descendants (those alive now), in ms."""
    total = 0.0
    for member in descendants(pid):
        with contextlib.suppress(OSError):
            total += cpu_ms(member)
    return total


def tree_peak_rss_kb(pid: int) -> int:
    """The largest peak RSS (VmHWM) of one process in `pid`'s tree."""
    peaks = [0]
    for member in descendants(pid):
        with contextlib.suppress(OSError, RuntimeError):
            peaks.append(status_kb(member, "VmHWM"))
    return max(peaks)


@contextlib.contextmanager
def server(
    env: dict[str, str], *, workers: int = 1, cwd: Path | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`storefront serve` on a loopback port (`workers` uvicorn workers), rate limits
    lifted; yields its base URL and process, and always stops it.

    `cwd` (with PYTHONPATH in `env`) runs another checkout of the code in this venv.
    Up means `/livez`: a baseline's `/readyz` says its migrations are "unknown" on a
    database migrated past its head by this checkout (the suite checks the answers).
    """
    command = [sys.executable, "-m", "server.cli", "serve", "--host", HOST]
    command += ["--workers", str(workers)]
    with http_process(
        command, env, cwd=cwd, prefix="bench-server-", ready_path="/livez"
    ) as running:
        yield running


@contextlib.contextmanager
def http_process(
    command: list[str],
    env: dict[str, str],
    *,
    cwd: Path | None = None,
    prefix: str = "bench-http-",
    ready_path: str = "/health",
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`command` + `--port P` on a free loopback port, until GET `ready_path` answers
    200; yields its base URL and process, and always stops it."""
    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix=prefix, suffix=".log", delete=False)  # noqa: SIM115
    process = subprocess.Popen(
        [*command, "--port", str(port)],
        env={**os.environ, **UNTHROTTLED, "LOG_LEVEL": "warning", **env},
        cwd=cwd,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited ({process.returncode}); see {log.name}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}{ready_path}", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"server not healthy within 90 s; see {log.name}")
            time.sleep(0.2)
        yield base, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()
