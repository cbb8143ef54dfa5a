"""How long the `storefront` CLI takes to start: `--help`, and a `migrate` that fails fast.

    .venv/bin/python bench/cli_startup.py [--runs 10]

Runs each command RUNS times as a fresh process (the console script,
.venv/bin/storefront) and prints the median and the spread of wall times. The
`migrate` case points DATABASE_URL at a closed port: the time to a one-line
error. `python -X importtime -m server.cli --help` shows what remains imported.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

STOREFRONT = Path(sys.executable).with_name("storefront")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _time(args: list[str], env: dict[str, str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(args, env=env, capture_output=True, check=False)
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    runs = parser.parse_args().runs
    env = {**os.environ, "LOG_LEVEL": "warning"}
    closed = f"postgresql://postgres@127.0.0.1:{_closed_port()}/storefront"
    cases = {
        "storefront --help": ([str(STOREFRONT), "--help"], env),
        "storefront migrate (closed port)": (
            [str(STOREFRONT), "migrate"],
            {**env, "DATABASE_URL": closed},
        ),
    }
    print(f"{runs} runs each; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    for name, (args, case_env) in cases.items():
        times = _time(args, case_env, runs)
        print(
            f"{name:<36} median {statistics.median(times) * 1000:7.0f} ms"
            f"   min {min(times) * 1000:6.0f} ms   max {max(times) * 1000:6.0f} ms"
        )


if __name__ == "__main__":
    main()
