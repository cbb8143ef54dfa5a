"""A py-spy flame graph of a server while wrk loads it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from bench.suite.load import Sample, wrk


def py_spy() -> str:
    """The py-spy of this venv (a dev dependency), else one on PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if found is None:
        raise SystemExit("py-spy is missing: `make install` (a dev dependency)")
    return found


def record(
    path: Path, *, pid: int, url: str, body: str, token: str, seconds: int, connections: int
) -> Sample:
    """Samples `pid` (and its subprocesses) for `seconds` under wrk's load into an SVG.

    --nonblocking: py-spy reads the stacks without pausing the server, so the load
    (and the shares of the graph) stay those of an unobserved run.
    """
    command = [py_spy(), "record", "--pid", str(pid), "--format", "flamegraph"]
    command += ["--output", str(path), "--duration", str(seconds), "--rate", "200"]
    command += ["--nonblocking", "--subprocesses"]
    spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        sample = wrk(url, body, token, pid=pid, connections=connections, seconds=seconds)
        _, errors = spy.communicate(timeout=seconds + 60)
    finally:
        if spy.poll() is None:
            spy.kill()
            spy.wait()
    if spy.returncode != 0 or not path.exists():
        raise RuntimeError(f"py-spy failed ({spy.returncode}): {errors.decode()[-2000:]}")
    return sample
