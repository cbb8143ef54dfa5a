"""`storefront cache purge` through the real CLI, seen through HTTP: a cached answer is a
MISS after a purge of everything, of its type or of its tag, and survives other purges."""

from __future__ import annotations

import pytest

from tests.cache_support import cached_app
from tests.conftest import Api, Database
from tests.factories import Factory
from tests.redis_support import require_redis_url
from tests.server.cli_support import acli, assert_one_line_error, cli

CATEGORIES = "{ categories { name } }"


async def _cached(api: Api) -> None:
    await api.post(CATEGORIES)
    assert (await api.post(CATEGORIES)).headers["x-cache"] == "HIT"


@pytest.mark.parametrize(
    ("purge", "kept_by"),
    [
        (["--all"], None),
        (["--type", "Category"], ["--type", "Product"]),
        (["--tag", "Category:list"], ["--tag", "Product:list"]),
    ],
)
async def test_purge_drops_what_it_names_for_every_server(
    db: Database, factory: Factory, purge: list[str], kept_by: list[str] | None
) -> None:
    await factory.category(name="Home")
    env = {"DATABASE_URL": db.url, "REDIS_URL": require_redis_url()}
    async with cached_app(db, "redis") as api:
        await _cached(api)
        if kept_by is not None:
            other = await acli("cache", "purge", *kept_by, env=env)
            assert other.returncode == 0, other.stderr
            assert (await api.post(CATEGORIES)).headers["x-cache"] == "HIT"

        purged = await acli("cache", "purge", *purge, env=env)

        assert purged.returncode == 0, purged.stderr
        assert purged.stdout.startswith("Purged")
        assert (await api.post(CATEGORIES)).headers["x-cache"] == "MISS"
        assert (await api.post(CATEGORIES)).headers["x-cache"] == "HIT"


def test_without_redis_it_says_nothing_can_be_purged() -> None:
    result = cli("cache", "purge", "--all", env={})
    assert_one_line_error(result, "nothing purged", "REDIS_URL", "restart the server")


def test_a_misspelt_type_is_refused() -> None:
    result = cli("cache", "purge", "--type", "Prodcut", env={"REDIS_URL": "redis://127.0.0.1:1/0"})
    assert result.returncode == 2
    assert "Prodcut" in result.stderr
    assert "Product" in result.stderr


def test_a_purge_names_what_to_purge() -> None:
    for args in ([], ["--all", "--type", "Product"]):
        result = cli("cache", "purge", *args, env={})
        assert result.returncode == 2
        assert "--all, or one or more --type / --tag" in result.stderr


def test_redis_down_is_one_line() -> None:
    result = cli("cache", "purge", "--all", env={"REDIS_URL": "redis://127.0.0.1:1/0"})
    assert_one_line_error(result, "Redis at 127.0.0.1:1", "is Redis running?")
