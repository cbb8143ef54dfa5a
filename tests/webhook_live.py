"""Real `storefront worker` processes for tests: started with the test's environment,
killed (SIGKILL) or stopped (SIGTERM), always reaped."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from tests.live_server import ROOT, read_whole


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    log: IO[bytes]

    def output(self) -> str:
        return read_whole(self.log)

    def kill(self) -> None:
        """SIGKILL: no cleanup, jobs in flight stay `active` in Redis."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)


@contextlib.contextmanager
def live_worker(env: dict[str, str]) -> Iterator[WorkerProcess]:
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in the finally below
    process = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "worker"],
        env={**os.environ, "LOG_LEVEL": "warning", **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    worker = WorkerProcess(process, log)
    try:
        yield worker
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        log.close()
