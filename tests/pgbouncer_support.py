"""A real PgBouncer (Debian's `pgbouncer`) in transaction mode, in front of a PostgreSQL database.

`running_pgbouncer(url)` starts one from deploy/pgbouncer.ini on a free port,
with only the addresses, the auth file and logging replaced, and stops it (and
removes its directory) on exit, even on failure. The URL it yields reaches the
same database through the pooler. Without the binary, `require_pgbouncer()`
skips the test, or fails it under CI=true.

PgBouncer refuses to run as root: as root it is started with `-u` as the
owner of the PostgreSQL socket directory's account (`postgres`), its files
made readable to that account.

Example:
    with running_pgbouncer("postgresql://postgres@127.0.0.1:5432/app") as bouncer:
        settings = {"DATABASE_URL": bouncer.url, "DB_POOLER": "pgbouncer"}
"""

from __future__ import annotations

import configparser
import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEPLOY_INI = ROOT / "deploy" / "pgbouncer.ini"
MISSING = "pgbouncer is not installed: the PgBouncer leg is not run (`make scaleout-deps`)"
START_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class PgBouncer:
    """A running pgbouncer: `url` reaches the database through it (same scheme as given)."""

    host: str
    port: int
    url: str
    directory: Path
    process: subprocess.Popen[bytes]

    def log(self) -> str:
        """What it has logged so far (its stderr)."""
        path = self.directory / "pgbouncer.log"
        return path.read_text(errors="replace") if path.exists() else ""


def pgbouncer_binary() -> str | None:
    return shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if os.access("/usr/sbin/pgbouncer", os.X_OK) else None
    )


def require_pgbouncer() -> str:
    """The pgbouncer binary; skips without it, or fails when CI is set."""
    found = pgbouncer_binary()
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(MISSING)
        pytest.skip(MISSING)
    return found


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def config(
    target: str, *, port: int, directory: Path, overrides: dict[str, str] | None = None
) -> str:
    """deploy/pgbouncer.ini pointed at the database of `target` (a PostgreSQL URL),
    listening on 127.0.0.1:`port`, trusting the user of `target`, logging to a file
    in `directory`; `overrides` replace further [pgbouncer] keys."""
    parts = urlsplit(target)
    database = parts.path.lstrip("/")
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=(";",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read(DEPLOY_INI)
    parser.remove_section("databases")
    parser.add_section("databases")
    parser.set(
        "databases",
        database,
        f"host={parts.hostname or '127.0.0.1'} port={parts.port or 5432} dbname={database}",
    )
    section = {
        "listen_addr": "127.0.0.1",
        "listen_port": str(port),
        "unix_socket_dir": "",
        # The test PostgreSQL trusts local users; PgBouncer still wants them listed.
        "auth_type": "trust",
        "auth_file": str(directory / "userlist.txt"),
        "logfile": str(directory / "pgbouncer.log"),
        "pidfile": "",
        "log_connections": "0",
        "log_disconnections": "0",
        **(overrides or {}),
    }
    for key, value in section.items():
        parser.set("pgbouncer", key, value)
    lines = []
    for name in parser.sections():
        lines.append(f"[{name}]")
        lines.extend(f"{key} = {value}" for key, value in parser.items(name))
        lines.append("")
    return "\n".join(lines)


@contextlib.contextmanager
def running_pgbouncer(
    target: str, *, overrides: dict[str, str] | None = None
) -> Iterator[PgBouncer]:
    """A pgbouncer in front of `target`'s database until the block ends (see the module)."""
    binary = require_pgbouncer()
    parts = urlsplit(target)
    user = parts.username or "postgres"
    port = free_port()
    directory = Path(tempfile.mkdtemp(prefix="sf-pgbouncer-"))
    process: subprocess.Popen[bytes] | None = None
    try:
        (directory / "userlist.txt").write_text(f'"{user}" ""\n')
        ini = directory / "pgbouncer.ini"
        ini.write_text(config(target, port=port, directory=directory, overrides=overrides))
        command = [binary, "-q", str(ini)]
        if os.geteuid() == 0:
            account = pwd.getpwnam("postgres")
            os.chmod(directory, 0o755)
            os.chown(directory, account.pw_uid, account.pw_gid)
            for path in directory.iterdir():
                os.chown(path, account.pw_uid, account.pw_gid)
            command = [binary, "-q", "-u", "postgres", str(ini)]
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        _wait_listening(process, port, directory)
        netloc = parts.netloc.rsplit("@", 1)
        credentials = f"{netloc[0]}@" if len(netloc) == 2 else ""
        url = urlunsplit(parts._replace(netloc=f"{credentials}127.0.0.1:{port}"))
        yield PgBouncer("127.0.0.1", port, url, directory, process)
    finally:
        if process is not None:
            _stop(process)
        shutil.rmtree(directory, ignore_errors=True)


def _wait_listening(process: subprocess.Popen[bytes], port: int, directory: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
            log = (
                (directory / "pgbouncer.log").read_text(errors="replace")[-2000:]
                if (directory / "pgbouncer.log").exists()
                else ""
            )
            raise RuntimeError(f"pgbouncer exited with {process.returncode}: {stderr}{log}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"pgbouncer did not listen on port {port} within {START_TIMEOUT:g} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (before 1.23: an immediate shutdown), then SIGKILL if it lingers."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
    if process.stderr is not None:
        process.stderr.close()
