"""A real primary and streaming replica for tests: two clusters of their own, always removed.

`initdb` makes the primary (wal_level=replica) on a free port in a temporary
folder, `pg_basebackup -R` the replica from it; both run under `pg_ctl`, as the
`postgres` user when the tests run as root. Without those tools the tests skip,
but fail under CI=true.

Example:
    with replicated_pair() as (primary, replica):
        replica.sql("SELECT pg_is_in_recovery()")  # -> "t"
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.live_server import HOST, free_port

BIN_DIRS = ("/usr/lib/postgresql/15/bin", "/usr/local/bin", "/usr/bin")
TOOLS = ("initdb", "pg_ctl", "pg_basebackup", "psql")
DATABASE = "storefront"


def _tool(name: str) -> str | None:
    for folder in BIN_DIRS:
        path = Path(folder) / name
        if path.exists():
            return str(path)
    return shutil.which(name)


def require_replication_tools() -> dict[str, str]:
    """Each tool's path; skips (fails under CI=true) when one is missing."""
    found = {name: _tool(name) for name in TOOLS}
    missing = [name for name, path in found.items() if path is None]
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        missing.append("runuser (to run PostgreSQL as the postgres user)")
    if missing:
        message = "PostgreSQL replication tools missing: " + ", ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return {name: path for name, path in found.items() if path is not None}


@dataclass
class Cluster:
    """One running PostgreSQL cluster of the test's."""

    name: str
    data: Path
    port: int
    sockets: Path
    tools: dict[str, str]

    @property
    def url(self) -> str:
        return f"postgresql://postgres@{HOST}:{self.port}/{DATABASE}"

    def run(self, tool: str, *args: str, timeout: float = 60) -> str:
        """`tool` run as the clusters' owner; its stdout (its output fails the test on error)."""
        command = [self.tools[tool], *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)}: {result.stdout}{result.stderr}")
        return result.stdout

    def sql(self, statement: str, database: str = DATABASE) -> str:
        """One statement through psql; its single value (or rows, `|`-separated)."""
        return self.run(
            "psql", "-X", "-At", "-h", HOST, "-p", str(self.port), "-U", "postgres",
            "-d", database, "-c", statement,
        ).strip()  # fmt: skip

    def start(self) -> None:
        log = self.data.parent / f"{self.name}.log"
        self.run("pg_ctl", "-D", str(self.data), "-l", str(log), "-w", "-t", "30", "start")

    def stop(self) -> None:
        self.run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def settings(self, **values: str) -> None:
        with (self.data / "postgresql.conf").open("a") as conf:
            for name, value in values.items():
                conf.write(f"{name} = '{value}'\n")


@contextlib.contextmanager
def replicated_pair() -> Iterator[tuple[Cluster, Cluster]]:
    """A running primary with database `storefront` and its streaming replica, stopped
    and deleted on exit even when setting them up failed."""
    tools = require_replication_tools()
    root = Path(tempfile.mkdtemp(prefix="sf-replicas-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    primary = Cluster("primary", root / "primary", free_port(), root, tools)
    replica = Cluster("replica", root / "replica", free_port(), root, tools)
    try:
        primary.run(
            "initdb", "-D", str(primary.data), "-U", "postgres", "-A", "trust",
            "--no-sync", "-E", "UTF8", "--locale=C",
        )  # fmt: skip
        primary.settings(
            port=str(primary.port),
            listen_addresses=HOST,
            unix_socket_directories=str(root),
            wal_level="replica",
            max_wal_senders="4",
            fsync="off",
            full_page_writes="off",
            shared_preload_libraries="pg_stat_statements",
            wal_receiver_status_interval="1s",
        )
        primary.start()
        primary.sql(f"CREATE DATABASE {DATABASE}", database="postgres")
        primary.sql("CREATE EXTENSION pg_stat_statements")
        primary.run(
            "pg_basebackup", "-h", HOST, "-p", str(primary.port), "-U", "postgres",
            "-D", str(replica.data), "-R", "-X", "stream", "-c", "fast", "--no-sync",
        )  # fmt: skip
        replica.settings(port=str(replica.port), hot_standby_feedback="on")
        replica.start()
        wait_for(lambda: replica.sql("SELECT pg_is_in_recovery()") == "t", "the replica")
        yield primary, replica
    finally:
        for cluster in (replica, primary):
            if cluster.running():
                with contextlib.suppress(Exception):
                    cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    """Polls `condition()` (errors count as not yet) until true; fails after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if condition():
                return
        time.sleep(0.05)
    pytest.fail(f"{what} was not ready within {timeout} s")


def caught_up(primary: Cluster, replica: Cluster) -> bool:
    """Whether the replica has replayed everything the primary has written so far."""
    position = primary.sql("SELECT pg_current_wal_lsn()")
    return replica.sql(f"SELECT pg_last_wal_replay_lsn() >= '{position}'::pg_lsn") == "t"


def product_reads(cluster: Cluster) -> int:
    """Statements that read `products` run on `cluster` so far (pg_stat_statements)."""
    return int(
        cluster.sql(
            "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements"
            " WHERE query LIKE '%FROM products%' AND query NOT LIKE '%pg_stat_statements%'"
        )
    )
