"""Real `storefront serve` processes for end-to-end tests: loopback only, always stopped.

Example:
    with live_server({"DATABASE_URL": url, "REDIS_URL": redis}) as server:
        httpx.get(f"{server.url}/health")
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
E2E = ROOT / "e2e"
HOST = "127.0.0.1"
MISMATCH = "compiled execution differs from graphql-core"  # schema/compiled/compare.py


@dataclass
class LiveServer:
    url: str
    process: subprocess.Popen[bytes]
    log: IO[bytes]

    @property
    def graphql(self) -> str:
        return f"{self.url}/graphql"

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def output(self) -> str:
        return read_whole(self.log)

    def pids(self) -> set[int]:
        """The server's process and its descendants (uvicorn's workers), from Linux's /proc."""
        pids, todo = set(), [self.process.pid]
        while todo:
            pid = todo.pop()
            pids.add(pid)
            with contextlib.suppress(OSError):
                todo.extend(map(int, Path(f"/proc/{pid}/task/{pid}/children").read_text().split()))
        return pids

    def pid_serving(self, response: httpx.Response) -> int:
        """The process holding the server end of `response`'s connection, still open.

        Tells a multi-worker server's workers apart without any help from the
        app: the client's port names the TCP connection, /proc/net/tcp its
        socket inode, and /proc/PID/fd the process that accepted it.
        """
        client_port = response.extensions["network_stream"].get_extra_info("client_addr")[1]
        socket_link = f"socket:[{_tcp_inode(local_port=self.port, remote_port=client_port)}]"
        for pid in self.pids():
            with contextlib.suppress(OSError):
                for fd in Path(f"/proc/{pid}/fd").iterdir():
                    with contextlib.suppress(OSError):
                        if os.readlink(fd) == socket_link:
                            return pid
        raise LookupError(f"no process of the server holds {socket_link}")


def read_whole(log: IO[bytes]) -> str:
    """Everything a child process has written to `log` so far.

    Read through a file description of its own (`/proc/self/fd/N`): the child writes
    through the one it inherited, whose offset a `seek(0)` here would move, and its
    next line would then overwrite the file's start (CI saw the first log line cut).
    """
    with open(f"/proc/self/fd/{log.fileno()}", "rb") as reader:
        return reader.read().decode(errors="replace")


def _tcp_inode(*, local_port: int, remote_port: int) -> int:
    """The inode of the IPv4 TCP socket between these two ports, from /proc/net/tcp."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, inode = fields[1], fields[2], fields[9]
        if int(local.split(":")[1], 16) == local_port and (
            int(remote.split(":")[1], 16) == remote_port
        ):
            return int(inode)
    raise LookupError(f"no TCP socket from port {local_port} to port {remote_port}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def live_server(
    env: dict[str, str],
    *,
    args: Sequence[str] = (),
    timeout: float = 60,
    ready_path: str = "/readyz",
) -> Iterator[LiveServer]:
    """`storefront serve` on a free loopback port with `env` added to ours; on entry,
    `ready_path` answers 200 (`/livez` for a server that is up but not ready).

    `args` go to `serve` after the host and port, e.g. ("--workers", "2"). SIGTERM
    stops it at once (SHUTDOWN_GRACE_SECONDS=0) unless `env` says otherwise. Its
    queries run on both executors, compared (GRAPHQL_EXECUTION=compare): a difference
    it logged fails the test when the block ends.
    """
    port = free_port()
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in the finally below
    process = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "serve", "--host", HOST, "--port", str(port), *args],
        env={
            **os.environ,
            "LOG_LEVEL": "warning",
            "CACHE_ENABLED": "false",
            "SHUTDOWN_GRACE_SECONDS": "0",
            "GRAPHQL_EXECUTION": "compare",
            **env,
        },
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    server = LiveServer(f"http://{HOST}:{port}", process, log)
    try:
        _wait_until_ready(server, timeout, ready_path)
        yield server
        assert MISMATCH not in server.output(), server.output()
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


def _wait_until_ready(server: LiveServer, timeout: float, path: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"the server exited early:\n{server.output()}")
        try:
            if httpx.get(f"{server.url}{path}", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    pytest.fail(f"the server was not ready within {timeout} s:\n{server.output()}")


def require_node_tools(*, chromium: bool = False) -> str:
    """The `node` executable, with e2e/node_modules installed (and Chromium when asked).

    Locally a missing tool skips the test; in CI (env CI set) it fails it, so an
    install step that broke cannot pass unnoticed. `make e2e-deps` installs them.
    """
    node = shutil.which("node")
    missing = []
    if node is None:
        missing.append("node")
    if not (E2E / "node_modules").is_dir():
        missing.append("e2e/node_modules (run `make e2e-deps`)")
    if chromium and not Path(os.environ.get("CHROMIUM", "/usr/bin/chromium")).exists():
        missing.append("chromium (run `make e2e-deps`)")
    if missing:
        message = "end-to-end tools missing: " + ", ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    assert node is not None
    return node


def run_node(node: str, script: str, *args: str, timeout: float = 120) -> str:
    """Run e2e/`script` with Node; its stdout, failing the test when it exits non-zero."""
    result = subprocess.run(
        [node, str(E2E / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=E2E,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"node {script} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result.stdout
