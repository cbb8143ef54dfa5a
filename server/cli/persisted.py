"""`storefront persisted`: import, list and remove trusted documents in Redis.

Trusted documents live where every server process reads them: in Redis
(REDIS_URL). A single process without Redis loads them at startup from the
file named by PERSISTED_QUERIES_MANIFEST instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:  # the rest is imported when a command runs: `--help` stays fast
    from server.persisted.stores import RedisPersistedQueryStore
    from server.settings import Settings

# An operator's command may wait for Redis far longer than a request does.
OPERATOR_TIMEOUT = 30.0


@asynccontextmanager
async def _store(settings: Settings) -> AsyncIterator[RedisPersistedQueryStore]:
    from server.persisted.stores import RedisPersistedQueryStore
    from server.redis_guard import operator_redis

    client = operator_redis(settings)
    if client is None:
        raise click.ClickException(
            "REDIS_URL is not set. Trusted documents are kept in Redis, shared by every"
            " server process; a single process without Redis loads them at startup from"
            " PERSISTED_QUERIES_MANIFEST=FILE instead."
        )
    store = RedisPersistedQueryStore(
        client,
        apq_ttl_seconds=1,
        timeout=OPERATOR_TIMEOUT,
        owns_client=True,
    )
    try:
        yield store
    finally:
        await store.close()


@click.group()
def persisted() -> None:
    """Trusted documents (persisted queries imported from client builds)."""


@persisted.command("import")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option("--check", is_flag=True, help="Only parse and validate; store nothing.")
def import_command(source: Path, check: bool) -> None:
    """Import SOURCE: an Apollo manifest, an {id: document} map, or a folder of .graphql files.

    Every document is parsed and validated against the schema first, and priced
    with its default variables against MAX_QUERY_COST; if any is invalid or too
    costly, nothing is imported. Imported documents never expire.
    """
    from schema import create_schema
    from server.cli.runtime import load_settings, run
    from server.persisted.manifest import ManifestError, load_manifest

    settings = load_settings()
    try:
        documents = load_manifest(
            source, schema=create_schema()._schema, max_cost=settings.max_query_cost
        )
    except ManifestError as error:
        raise click.ClickException(str(error)) from None
    if check:
        click.echo(f"{len(documents)} valid documents in {source}; nothing stored (--check).")
        return

    async def go(settings: Settings) -> None:
        async with _store(settings) as store:
            await store.put_trusted(documents)

    run(go, database=False)
    click.echo(f"Imported {len(documents)} trusted documents from {source}.")


@persisted.command("list")
@click.option("--unknown", is_flag=True, help="Instead: untrusted documents seen in audit mode.")
def list_command(unknown: bool) -> None:
    """List trusted documents: id, SHA-256 and operation name, one a line."""
    from server.cli.runtime import run

    async def go(settings: Settings) -> list[str]:
        async with _store(settings) as store:
            if unknown:
                counts = await store.unknown_counts()
                ordered = sorted(counts.items(), key=lambda item: -item[1])
                return [f"{sha256}\t{count}" for sha256, count in ordered]
            return [f"{d.id}\t{d.sha256}\t{d.name or '-'}" for d in await store.list_trusted()]

    for line in run(go, database=False):
        click.echo(line)


@persisted.command("remove")
@click.argument("ids", nargs=-1, required=False)
@click.option("--all", "remove_all", is_flag=True, help="Remove every trusted document.")
def remove_command(ids: tuple[str, ...], remove_all: bool) -> None:
    """Remove trusted documents by id (as `list` shows them)."""
    if not ids and not remove_all:
        raise click.UsageError("Name the ids to remove, or pass --all.")
    from server.cli.runtime import run

    async def go(settings: Settings) -> int:
        async with _store(settings) as store:
            wanted = [d.id for d in await store.list_trusted()] if remove_all else list(ids)
            return await store.remove_trusted(wanted)

    removed = run(go, database=False)
    if ids and removed < len(set(ids)):
        raise click.ClickException(f"Removed {removed}; the other ids were not trusted documents.")
    click.echo(f"Removed {removed} trusted documents.")
