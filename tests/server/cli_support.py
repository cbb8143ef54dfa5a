"""Running the real `storefront` CLI in a subprocess, for tests/server/cli/test_cli*.py."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys


def cli(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`python -m server.cli ARGS` with exactly `env` added to a clean environment."""
    return subprocess.run(
        [sys.executable, "-m", "server.cli", *args],
        env=cli_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


async def acli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`cli` from an async test, without blocking its event loop."""
    return await asyncio.to_thread(cli, *args, env=env)


def cli_env(env: dict[str, str]) -> dict[str, str]:
    # Nothing of the caller's storefront settings leaks in (a REDIS_URL, a LOG_LEVEL).
    base = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "SYSTEMROOT"}}
    # No drain on SIGTERM unless a test asks: stopping a server would wait for it.
    return {**base, "LOG_LEVEL": "warning", "SHUTDOWN_GRACE_SECONDS": "0", **env}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    """Failed, with one `Error: ...` line on stderr holding each fragment, and no traceback."""
    assert result.returncode != 0, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
