"""`storefront cache purge`: drop result-cache entries (answers and entities) everywhere.

Only the Redis store (REDIS_URL) is shared: a purge there reaches every worker
and instance at once. Without Redis each server process keeps its cache in its
own memory, out of another process's reach: the command says so and exits 1,
since nothing was purged (restarting the server empties that cache).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from server.settings import Settings

# Seconds the CLI waits for Redis (the server's CACHE_REDIS_TIMEOUT_MS is for requests).
REDIS_TIMEOUT = 5.0


@click.group()
def cache() -> None:
    """The result cache."""


@cache.command("purge")
@click.option("--all", "purge_all", is_flag=True, help="Every cached answer and entity.")
@click.option(
    "--type", "types", multiple=True, metavar="TYPE", help="Everything of a type, e.g. Product."
)
@click.option(
    "--tag", "tags", multiple=True, metavar="TAG", help="One tag, e.g. Product:42 or Product:list."
)
def cache_purge(purge_all: bool, types: tuple[str, ...], tags: tuple[str, ...]) -> None:
    """Drop cached answers and entities: all of them, of a type, or of a tag.

    --type and --tag may be repeated. Needs REDIS_URL, the cache every server
    process shares; each is O(1) or O(entries of the tag).
    """
    if purge_all == bool(types or tags):
        raise click.UsageError("Pass --all, or one or more --type / --tag (not both).")
    from server.cli.runtime import load_settings, run

    settings = load_settings()
    if not settings.redis_url:
        raise click.ClickException(
            "nothing purged: without REDIS_URL each server process keeps its own result cache"
            " in memory, which no other process can reach; restart the server to empty it."
        )
    if types:
        _check_types(types)

    async def go(settings: Settings) -> None:
        from server.cache.caches import TOMBSTONE_MARGIN
        from server.cache.protocol import ALL_TYPES
        from server.cache.store_redis import RedisCacheStore
        from server.redis_guard import create_redis

        client = create_redis(settings, timeout=REDIS_TIMEOUT)
        assert client is not None
        execution = settings.execution_timeout_ms / 1000
        store = RedisCacheStore(
            client,
            timeout=REDIS_TIMEOUT,
            # As the servers' stores: a read racing this purge must not store what it read.
            tombstone_ttl=max(settings.cache_entity_ttl, execution) + TOMBSTONE_MARGIN,
            owns_client=True,
        )
        try:
            await store.redis.ping()
            if purge_all:
                await store.invalidate_types([ALL_TYPES])
            if types:
                await store.invalidate_types(types)
            if tags:
                await store.invalidate(tags)
            # The store keeps an invalidation Redis did not take, to replay later;
            # a snapshot replays it first, and raises if Redis still refuses it.
            await store.snapshot()
        finally:
            await store.close()

    run(go, database=False)
    if purge_all:
        click.echo("Purged the whole result cache.")
    else:
        what = [f"type {name}" for name in types] + [f"tag {tag}" for tag in tags]
        click.echo("Purged from the result cache: " + ", ".join(what) + ".")


def _check_types(types: tuple[str, ...]) -> None:
    """A misspelt type would purge nothing, silently: refuse it."""
    from graphql import GraphQLObjectType

    from schema import create_schema

    known = sorted(
        name
        for name, kind in create_schema()._schema.type_map.items()
        if isinstance(kind, GraphQLObjectType)
        and not name.startswith("__")
        and name not in {"Query", "Mutation", "Subscription"}
    )
    unknown = [name for name in types if name not in known]
    if unknown:
        raise click.BadParameter(
            f"{', '.join(unknown)} (types: {', '.join(known)})",
            param_hint="--type",
        )
