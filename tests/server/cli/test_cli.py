"""The `storefront` CLI, run as a real process: serve --demo, tokens, migrate, seed."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest


def _cli(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def sqlite_env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "LOG_LEVEL": "warning",
        "SHUTDOWN_GRACE_SECONDS": "0",
    }


@pytest.fixture
def demo_server(sqlite_env: dict[str, str]) -> Iterator[tuple[str, dict[str, str]]]:
    port = _free_port()
    env = {**sqlite_env, "PORT": str(port)}
    process = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "serve", "--demo"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    tokens: dict[str, str] = {}
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 120
        headers: dict[str, str] = {}
        while time.monotonic() < deadline and len(headers) < 2:
            line = process.stdout.readline()
            if not line:
                break
            if line.startswith(("Admin token:", "Customer token:")):
                tokens[line.split(":", 1)[0].split()[0].lower()] = line.split()[-1]
            if line.startswith(("Admin headers:", "Customer headers:")):
                headers[line.split()[0].lower()] = line.split(":", 1)[1].strip()
        assert len(tokens) == 2, "serve --demo did not print two tokens"
        # Each headers line is what GraphiQL's Headers tab takes, as printed.
        for role, token in tokens.items():
            assert json.loads(headers[role]) == {"Authorization": f"Bearer {token}"}
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield base, tokens
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def test_serve_demo_serves_graphiql_and_demo_data(demo_server: tuple[str, dict[str, str]]) -> None:
    base, tokens = demo_server
    page = httpx.get(f"{base}/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "graphiql" in page.text.lower()
    response = httpx.post(
        f"{base}/graphql",
        json={
            "query": "{ viewer { email role } orders(first: 5) { totalCount }"
            " products { totalCount } }"
        },
        headers={"Authorization": f"Bearer {tokens['admin']}"},
    )
    body = response.json()
    assert body["data"]["viewer"] == {"email": "admin@example.com", "role": "ADMIN"}
    assert body["data"]["orders"]["totalCount"] == 2000
    assert body["data"]["products"]["totalCount"] > 0
    customer = httpx.post(
        f"{base}/graphql",
        json={"query": "{ viewer { email orderCount } }"},
        headers={"Authorization": f"Bearer {tokens['customer']}"},
    ).json()
    assert customer["data"]["viewer"]["email"] == "customer@example.com"
    assert customer["data"]["viewer"]["orderCount"] > 0


def test_token_create_list_revoke(sqlite_env: dict[str, str]) -> None:
    assert _cli("migrate", env=sqlite_env).returncode == 0
    created = _cli(
        "token", "create", "--email", "Ops@Example.com", "--role", "admin", env=sqlite_env
    )
    assert created.returncode == 0, created.stderr
    token = created.stdout.split()[-1]
    assert token.startswith("sf_")
    listed = _cli("token", "list", "--email", "ops@example.com", env=sqlite_env)
    assert "active" in listed.stdout
    token_id = listed.stdout.split()[0]
    revoked = _cli("token", "revoke", token_id, env=sqlite_env)
    assert revoked.returncode == 0, revoked.stderr
    assert "revoked" in _cli("token", "list", "--email", "ops@example.com", env=sqlite_env).stdout
    missing = _cli("token", "revoke", "no-such-token", env=sqlite_env)
    assert missing.returncode != 0
    assert "No such token" in missing.stderr


def test_seed_refuses_a_non_empty_database(sqlite_env: dict[str, str]) -> None:
    assert _cli("migrate", env=sqlite_env).returncode == 0
    assert _cli("seed", "--scale", "small", env=sqlite_env).returncode == 0
    again = _cli("seed", "--scale", "small", env=sqlite_env)
    assert again.returncode != 0
    assert "--reset" in again.stderr
    assert _cli("seed", "--scale", "small", "--reset", env=sqlite_env).returncode == 0
