"""Foreseen failures of the real CLI: one line on stderr, non-zero exit, no traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from tests.server.cli_support import assert_one_line_error, cli, cli_env, free_port


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


@pytest.fixture
def closed_port_url() -> str:
    return f"postgresql://postgres@127.0.0.1:{free_port()}/storefront"


def _postgres_url(**parts: str) -> str:
    """TEST_DATABASE_URL with its user or database replaced (skips when unset)."""
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        pytest.skip("TEST_DATABASE_URL is not set: PostgreSQL backend not configured")
    split = urlsplit(url)
    netloc = split.netloc
    if "user" in parts:
        netloc = parts["user"] + "@" + netloc.rsplit("@", 1)[-1]
    path = "/" + parts["database"] if "database" in parts else split.path
    return urlunsplit((split.scheme, netloc, path, split.query, split.fragment))


@pytest.mark.parametrize(
    ("variable", "value", "fragments"),
    [
        ("PORT", "eighty", ("PORT", "whole number", "'eighty'")),
        ("PORT", "70000", ("PORT", "between 0 and 65535")),
        ("LOG_LEVEL", "loud", ("LOG_LEVEL", "info, debug, warning, error, critical", "'loud'")),
        ("LOG_FORMAT", "xml", ("LOG_FORMAT", "text, json", "'xml'")),
        ("SLOW_OPERATION_MS", "-5", ("SLOW_OPERATION_MS", "0 or more", "-5")),
        ("CACHE_ENABLED", "maybe", ("CACHE_ENABLED", "true or false", "'maybe'")),
        ("PERSISTED_QUERIES", "some", ("PERSISTED_QUERIES", "apq, trusted, audit, off")),
        ("TRUSTED_PROXIES", "10.0.0.300", ("TRUSTED_PROXIES", "IP addresses or networks")),
        ("COMPRESSION_MIN_BYTES", "-1", ("COMPRESSION_MIN_BYTES", "0 or more", "-1")),
        ("SHUTDOWN_GRACE_SECONDS", "-1", ("SHUTDOWN_GRACE_SECONDS", "0 or more", "-1")),
        ("SHUTDOWN_TIMEOUT_SECONDS", "-3", ("SHUTDOWN_TIMEOUT_SECONDS", "0 or more", "-3")),
        ("READINESS_TIMEOUT_MS", "0", ("READINESS_TIMEOUT_MS", "greater than 0", "0")),
    ],
)
def test_a_bad_setting_names_the_variable_and_what_it_accepts(
    sqlite_url: str, variable: str, value: str, fragments: tuple[str, ...]
) -> None:
    for command in (["migrate"], ["serve"], ["token", "list", "--email", "a@example.com"]):
        result = cli(*command, env={"DATABASE_URL": sqlite_url, variable: value})
        assert_one_line_error(result, *fragments)


def test_a_database_url_of_another_scheme_is_refused() -> None:
    for command in (["migrate"], ["serve"], ["seed"]):
        result = cli(*command, env={"DATABASE_URL": "mysql://root:secret@db/shop"})
        assert_one_line_error(result, "DATABASE_URL", "postgresql://", "sqlite:///", "mysql")
        assert "secret" not in result.stderr


def test_a_closed_port_says_where_and_asks_whether_postgresql_runs(closed_port_url: str) -> None:
    port = urlsplit(closed_port_url).port
    for command in (
        ["migrate"],
        ["seed"],
        ["token", "create", "--email", "a@example.com"],
        ["token", "list", "--email", "a@example.com"],
        ["user", "set-role", "--email", "a@example.com", "admin"],
        # --demo migrates, seeds and mints tokens: without its database it cannot serve its
        # promise, so unlike a plain `serve` it stops in one line.
        ["serve", "--demo", "--port", str(free_port())],
    ):
        result = cli(*command, env={"DATABASE_URL": closed_port_url})
        assert_one_line_error(result, f"127.0.0.1:{port}", "is PostgreSQL running?")


def test_debug_shows_the_traceback(closed_port_url: str) -> None:
    flagged = cli("--debug", "migrate", env={"DATABASE_URL": closed_port_url})
    by_level = cli("migrate", env={"DATABASE_URL": closed_port_url, "LOG_LEVEL": "debug"})
    for result in (flagged, by_level):
        assert result.returncode != 0
        assert "Traceback (most recent call last)" in result.stderr
        assert "ConnectionRefusedError" in result.stderr


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts connections and never says a word, like a host that drops packets."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield int(listener.getsockname()[1])
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    listener.close()


def test_a_server_that_never_answers_fails_within_the_connect_timeout(silent_server: int) -> None:
    started = time.monotonic()
    result = cli(
        "migrate", env={"DATABASE_URL": f"postgresql://postgres@127.0.0.1:{silent_server}/x"}
    )
    elapsed = time.monotonic() - started
    assert_one_line_error(result, f"127.0.0.1:{silent_server}", "did not answer within 5 s")
    # asyncpg alone would wait 60 s; the margin is for a loaded test machine's imports.
    assert elapsed < 40


def test_an_unknown_database_is_named_with_the_command_that_creates_it() -> None:
    url = _postgres_url(database="sf_no_such_database")
    result = cli("migrate", env={"DATABASE_URL": url})
    assert_one_line_error(result, "'sf_no_such_database' does not exist", "createdb")


def test_an_unknown_role_is_named() -> None:
    url = _postgres_url(user="sf_no_such_role")
    result = cli("token", "list", "--email", "a@example.com", env={"DATABASE_URL": url})
    assert_one_line_error(result, 'role "sf_no_such_role" does not exist', "DATABASE_URL")


def test_an_unreachable_host_name_is_named() -> None:
    result = cli("migrate", env={"DATABASE_URL": "postgresql://postgres@no-such-host.invalid/x"})
    assert_one_line_error(result, "'no-such-host.invalid'", "DATABASE_URL")


def test_an_unmigrated_database_asks_for_migrate(sqlite_url: str) -> None:
    result = cli("token", "list", "--email", "a@example.com", env={"DATABASE_URL": sqlite_url})
    assert_one_line_error(result, "storefront migrate")


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield int(sock.getsockname()[1])


def test_serve_on_a_busy_port_fails_in_one_line(sqlite_url: str, busy_port: int) -> None:
    result = cli("serve", "--port", str(busy_port), env={"DATABASE_URL": sqlite_url})
    assert_one_line_error(result, f"127.0.0.1:{busy_port}", "PORT or --port")


def test_serve_demo_on_a_busy_port_mints_no_token(sqlite_url: str, busy_port: int) -> None:
    env = {"DATABASE_URL": sqlite_url}
    assert cli("migrate", env=env).returncode == 0
    assert cli("token", "create", "--email", "admin@example.com", env=env).returncode == 0

    result = cli("serve", "--demo", env={**env, "PORT": str(busy_port)})

    assert_one_line_error(result, f"127.0.0.1:{busy_port}")
    assert "token" not in result.stdout.lower()
    listed = cli("token", "list", "--email", "admin@example.com", env=env)
    assert len(listed.stdout.splitlines()) == 1, listed.stdout
    customer = cli("token", "list", "--email", "customer@example.com", env=env)
    assert_one_line_error(customer, "No user with the email customer@example.com")


def test_serve_without_its_database_starts_and_reports_not_ready(closed_port_url: str) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "serve", "--port", str(port)],
        env=cli_env({"DATABASE_URL": closed_port_url}),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        health = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        assert health is not None, "serve did not answer (exited?)"
        assert health.status_code == 503
        assert health.json() == {"status": "unavailable", "database": "down"}
        time.sleep(1)
        assert process.poll() is None, "serve exited"
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)
    warning = stderr.splitlines()[0]
    assert warning.startswith("Warning: cannot connect to PostgreSQL at 127.0.0.1:")
    assert "/readyz (and /health) answers 503" in warning


def test_a_sqlite_file_that_cannot_be_opened_is_named() -> None:
    opened = cli("migrate", env={"DATABASE_URL": "sqlite:////proc/storefront.db"})
    assert_one_line_error(opened, "cannot open the SQLite database '/proc/storefront.db'")
    created = cli("migrate", env={"DATABASE_URL": "sqlite:////proc/no-such-dir/storefront.db"})
    assert_one_line_error(created, "/proc/no-such-dir")
