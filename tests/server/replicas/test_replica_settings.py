"""Bad replica settings stop startup in one line naming the setting."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from server.settings import Settings, SettingsError
from tests.live_server import ROOT

PRIMARY = "postgresql://postgres@127.0.0.1:5432/storefront"


def test_replica_urls_are_read_as_asyncpg_urls() -> None:
    settings = Settings.from_env(
        {
            "DATABASE_URL": PRIMARY,
            "DATABASE_REPLICA_URLS": "postgresql://a@r1/db, postgres://r2:6432/db",
        }
    )
    assert settings.database_replica_urls == (
        "postgresql+asyncpg://a@r1/db",
        "postgresql+asyncpg://r2:6432/db",
    )
    assert Settings.from_env({"DATABASE_URL": PRIMARY}).database_replica_urls == ()


@pytest.mark.parametrize(
    "urls", ["not a url", "postgresql://u:secret@r1:port/db", "mysql://r1/db", "postgresql://r1"]
)
def test_a_replica_url_that_does_not_parse_is_refused(urls: str) -> None:
    with pytest.raises(SettingsError, match=r"^DATABASE_REPLICA_URLS must be") as raised:
        Settings.from_env({"DATABASE_URL": PRIMARY, "DATABASE_REPLICA_URLS": urls})
    assert "secret" not in str(raised.value)


def test_replicas_need_a_postgresql_primary() -> None:
    with pytest.raises(SettingsError, match="DATABASE_REPLICA_URLS needs a PostgreSQL"):
        Settings.from_env({"DATABASE_REPLICA_URLS": "postgresql://r1/db"})


def test_serve_stops_in_one_line_naming_the_setting() -> None:
    env = {
        **os.environ,
        "DATABASE_URL": PRIMARY,
        "DATABASE_REPLICA_URLS": "postgresql://u:pw@r1:x/db",
    }
    result = subprocess.run(
        [sys.executable, "-m", "server.cli", "serve", "--port", "0"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: DATABASE_REPLICA_URLS must be")
    assert "pw" not in lines[0]
