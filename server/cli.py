"""The `storefront` command: serve, migrate, seed, and manage tokens and persisted queries."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click
import uvicorn
from sqlalchemy import func, select

from models import User, utcnow
from resolvers.errors import DomainError
from resolvers.idempotency import purge_expired
from resolvers.tokens import create_token, list_tokens, revoke_token
from server.cli_persisted import persisted
from server.database import create_engine, create_sessionmaker
from server.migrate import downgrade as run_downgrade
from server.migrate import upgrade as run_upgrade
from server.seed import SeedError, seed
from server.settings import Settings

T = TypeVar("T")

DEMO_ADMIN = "admin@example.com"
DEMO_CUSTOMER = "customer@example.com"


def _run(coro_fn: Callable[[Settings], Awaitable[T]]) -> T:
    settings = Settings.from_env()
    try:
        return asyncio.run(coro_fn(settings))  # type: ignore[arg-type]
    except (DomainError, SeedError) as error:
        raise click.ClickException(str(error)) from None


@click.group()
def main() -> None:
    """Storefront: a fast GraphQL API for a commerce domain."""


@main.command()
@click.option("--host", default=None, help="Interface to bind (env HOST, default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (env PORT, default 8000).")
@click.option("--workers", type=int, default=1, show_default=True)
@click.option("--demo", is_flag=True, help="Migrate, seed `small` if empty, print demo tokens.")
def serve(host: str | None, port: int | None, workers: int, demo: bool) -> None:
    """Serve the API with uvicorn."""
    settings = Settings.from_env()
    host = host or settings.host
    port = port or settings.port
    if demo:
        tokens = _run(_prepare_demo)
        click.echo(f"GraphiQL:       http://{host}:{port}/graphql")
        click.echo(f"Admin token:    {tokens[DEMO_ADMIN]}")
        click.echo(f"Customer token: {tokens[DEMO_CUSTOMER]}")
        click.echo('Paste into GraphiQL\'s headers: {"Authorization": "Bearer <token>"}')
    uvicorn.run(
        "server.app:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=settings.log_level,
        access_log=False,
        # Client addresses come from TRUSTED_PROXIES only (server/client_id.py):
        # uvicorn would otherwise trust X-Forwarded-For from 127.0.0.1.
        proxy_headers=False,
    )


async def _prepare_demo(settings: Settings) -> dict[str, str]:
    await run_upgrade(settings.database_url)
    engine = create_engine(settings)
    try:
        sessionmaker = create_sessionmaker(engine)
        async with sessionmaker() as session:
            users = (await session.execute(select(func.count()).select_from(User))).scalar_one()
        if users == 0:
            click.echo("Seeding the `small` demo data set...")
            await seed(engine=engine, scale="small")
        tokens = {}
        for email in (DEMO_ADMIN, DEMO_CUSTOMER):
            issued = await create_token(sessionmaker=sessionmaker, email=email)
            tokens[email] = issued.token
        return tokens
    finally:
        await engine.dispose()


@main.command()
@click.option("--revision", default="head", show_default=True)
def migrate(revision: str) -> None:
    """Upgrade the database schema (DATABASE_URL) to REVISION."""

    async def go(settings: Settings) -> None:
        await run_upgrade(settings.database_url, revision)

    _run(go)
    click.echo(f"Migrated to {revision}.")


@main.command()
@click.option("--revision", default="base", show_default=True)
@click.confirmation_option(prompt="This drops tables and their data. Continue?")
def downgrade(revision: str) -> None:
    """Downgrade the database schema to REVISION (default: drop everything)."""

    async def go(settings: Settings) -> None:
        await run_downgrade(settings.database_url, revision)

    _run(go)
    click.echo(f"Downgraded to {revision}.")


@main.command("seed")
@click.option("--scale", type=click.Choice(["small", "medium", "large"]), default="small")
@click.option("--reset", is_flag=True, help="Wipe a non-empty database first.")
def seed_command(scale: str, reset: bool) -> None:
    """Fill the database with deterministic demo data."""
    bars: dict[str, Any] = {}

    def progress(table: str, done: int, total: int) -> None:
        bar = bars.get(table)
        if bar is None:
            bar = bars[table] = click.progressbar(length=total, label=f"{table:<12}")
            bar.__enter__()
        bar.update(done - bar.pos)
        if done >= total:
            bar.__exit__(None, None, None)

    async def go(settings: Settings) -> dict[str, int]:
        engine = create_engine(settings)
        try:
            return await seed(engine=engine, scale=scale, reset=reset, progress=progress)
        finally:
            await engine.dispose()

    counts = _run(go)
    click.echo("Seeded: " + ", ".join(f"{n} {table}" for table, n in counts.items()))


@main.group()
def token() -> None:
    """Create, list and revoke API tokens."""


@token.command("create")
@click.option("--email", required=True)
@click.option("--role", type=click.Choice(["customer", "admin"]), default=None)
@click.option("--name", default=None, help="Name of a new user (default: from the email).")
def token_create(email: str, role: str | None, name: str | None) -> None:
    """Print a new token for EMAIL (shown once), creating the user if new."""

    async def go(settings: Settings) -> Any:
        engine = create_engine(settings)
        try:
            return await create_token(
                sessionmaker=create_sessionmaker(engine), email=email, role=role, name=name
            )
        finally:
            await engine.dispose()

    issued = _run(go)
    verb = "Created user" if issued.created_user else "User"
    click.echo(f"{verb} {issued.email} ({issued.role}). Token (shown once): {issued.token}")


@token.command("list")
@click.option("--email", required=True)
def token_list(email: str) -> None:
    """List the tokens of EMAIL (ids and dates; tokens themselves are never stored)."""

    async def go(settings: Settings) -> Any:
        engine = create_engine(settings)
        try:
            return await list_tokens(sessionmaker=create_sessionmaker(engine), email=email)
        finally:
            await engine.dispose()

    for info in _run(go):
        state = f"revoked {info.revoked_at.isoformat()}" if info.revoked_at else "active"
        click.echo(f"{info.id}\t{info.email}\tcreated {info.created_at.isoformat()}\t{state}")


@token.command("revoke")
@click.argument("token_or_id")
def token_revoke(token_or_id: str) -> None:
    """Revoke a token, given as its text or its id."""

    async def go(settings: Settings) -> int:
        engine = create_engine(settings)
        try:
            return await revoke_token(
                sessionmaker=create_sessionmaker(engine), token_or_id=token_or_id
            )
        finally:
            await engine.dispose()

    click.echo(f"Revoked token {_run(go)}.")


@main.command("purge-idempotency-keys")
def purge_idempotency_keys() -> None:
    """Delete Idempotency-Key rows older than 24 h (run it daily, e.g. from cron)."""

    async def go(settings: Settings) -> int:
        engine = create_engine(settings)
        try:
            return await purge_expired(sessionmaker=create_sessionmaker(engine), now=utcnow())
        finally:
            await engine.dispose()

    click.echo(f"Deleted {_run(go)} expired idempotency keys.")


main.add_command(persisted)


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
