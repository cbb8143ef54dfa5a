"""`storefront persisted import|list|remove`, run as a real process against Redis."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from server.persisted.protocol import sha256_hex
from tests.redis_support import clear_persisted, require_redis_url

CATALOG = "query Catalog { products(first: 2) { nodes { name } } }"
VIEWER = "query Me { viewer { email } }"


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server.cli", "persisted", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
async def redis_env() -> AsyncIterator[dict[str, str]]:
    url = require_redis_url()
    client = Redis.from_url(url)
    await clear_persisted(client)
    yield {**os.environ, "REDIS_URL": url}
    await clear_persisted(client)
    await client.aclose()


def manifest(tmp_path: Path, *bodies: tuple[str, str]) -> Path:
    path = tmp_path / "persisted-query-manifest.json"
    operations = [
        {"id": sha256_hex(body), "name": name, "type": "query", "body": body}
        for name, body in bodies
    ]
    path.write_text(
        json.dumps(
            {"format": "apollo-persisted-query-manifest", "version": 1, "operations": operations}
        )
    )
    return path


def test_import_list_remove(tmp_path: Path, redis_env: dict[str, str]) -> None:
    path = manifest(tmp_path, ("Catalog", CATALOG), ("Me", VIEWER))

    imported = cli("import", str(path), env=redis_env)
    assert imported.returncode == 0, imported.stderr
    assert "Imported 2 trusted documents" in imported.stdout

    listed = cli("list", env=redis_env).stdout.splitlines()
    assert sorted(listed) == sorted(
        [
            f"{sha256_hex(CATALOG)}\t{sha256_hex(CATALOG)}\tCatalog",
            f"{sha256_hex(VIEWER)}\t{sha256_hex(VIEWER)}\tMe",
        ]
    )

    removed = cli("remove", sha256_hex(CATALOG), env=redis_env)
    assert removed.returncode == 0, removed.stderr
    assert [line.split("\t")[2] for line in cli("list", env=redis_env).stdout.splitlines()] == [
        "Me"
    ]
    missing = cli("remove", "no-such-id", env=redis_env)
    assert missing.returncode != 0
    assert "not trusted documents" in missing.stderr
    assert cli("remove", "--all", env=redis_env).returncode == 0
    assert cli("list", env=redis_env).stdout == ""


def test_an_invalid_document_fails_the_import_and_stores_nothing(
    tmp_path: Path, redis_env: dict[str, str]
) -> None:
    path = manifest(tmp_path, ("Catalog", CATALOG), ("Typo", "query Typo { viewr { email } }"))

    result = cli("import", str(path), env=redis_env)

    assert result.returncode != 0
    assert "Typo" in result.stderr
    assert "Cannot query field 'viewr'" in result.stderr
    assert cli("list", env=redis_env).stdout == ""


def test_folder_import(tmp_path: Path, redis_env: dict[str, str]) -> None:
    (tmp_path / "ops").mkdir()
    (tmp_path / "ops" / "catalog.graphql").write_text(CATALOG)

    assert cli("import", str(tmp_path / "ops"), env=redis_env).returncode == 0

    assert cli("list", env=redis_env).stdout.split("\t")[2].strip() == "catalog.graphql"


def test_without_redis_only_checking_works(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    path = manifest(tmp_path, ("Catalog", CATALOG))

    refused = cli("import", str(path), env=env)
    assert refused.returncode != 0
    assert "REDIS_URL is not set" in refused.stderr
    assert "PERSISTED_QUERIES_MANIFEST" in refused.stderr
    checked = cli("import", "--check", str(path), env=env)
    assert checked.returncode == 0, checked.stderr
    assert "1 valid documents" in checked.stdout
