"""The `storefront` command: serve, migrate, seed, print the schema, and manage tokens,
roles, caches and persisted queries.

Startup is kept light: this module imports click and nothing heavy. Each command
imports what it needs (SQLAlchemy, uvicorn, the schema) when it runs, so
`storefront --help` answers at once. A failure the CLI can foresee (database
down, bad setting, busy port) is one line on stderr and exit status 1
(`server/cli/errors.py`); `--debug` or LOG_LEVEL=debug shows the traceback.
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType
from typing import TYPE_CHECKING, Any

import click

from server.cli.cache import cache
from server.cli.persisted import persisted
from server.cli.schema import schema_group
from server.cli.tokens import token, user

if TYPE_CHECKING:
    from server.settings import Settings

DEMO_ADMIN = "admin@example.com"
DEMO_CUSTOMER = "customer@example.com"

CONTEXT_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"], "show_default": True}


class StorefrontGroup(click.Group):
    """Turns a foreseen failure of any subcommand into one line (see server/cli/errors.py)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as error:
            if ctx.params.get("debug") or os.environ.get("LOG_LEVEL", "").lower() == "debug":
                raise
            from server.cli.errors import one_line

            message = one_line(error)
            if message is None:
                raise
            raise click.ClickException(message) from None


@click.group(cls=StorefrontGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(package_name="storefront", prog_name="storefront")
@click.option("--debug", is_flag=True, help="Show the full traceback of a failure.")
def main(debug: bool) -> None:
    """Storefront: a fast GraphQL API for a commerce domain.

    Configured by environment variables (README: Configuration), DATABASE_URL first.
    """


@main.command()
@click.option("--host", default=None, help="Interface to bind (default: HOST, else 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default: PORT, else 8000).")
@click.option("--workers", type=int, default=1)
@click.option("--demo", is_flag=True, help="Migrate, seed `small` if empty, print demo tokens.")
def serve(host: str | None, port: int | None, workers: int, demo: bool) -> None:
    """Serve the API with uvicorn.

    The port is checked first: nothing is migrated, seeded or minted when it is
    taken. An unreachable database does not stop the server: it starts, says so,
    and GET /readyz (and /health) answer 503 until the database answers; --demo
    needs it (it migrates, seeds and mints tokens), so it fails in one line instead.

    SIGTERM drains (server/lifecycle/shutdown.py): /readyz 503 at once, new connections
    served for SHUTDOWN_GRACE_SECONDS, requests in flight finished within
    SHUTDOWN_TIMEOUT_SECONDS, then exit status 0.
    """
    from server.cli.runtime import check_port_free, load_settings, run

    settings = load_settings()
    host = host or settings.host
    port = settings.port if port is None else port
    _check_tracing()
    check_port_free(host, port)
    if demo:
        tokens = run(_prepare_demo)
        admin, customer = tokens[DEMO_ADMIN], tokens[DEMO_CUSTOMER]
        click.echo(f"GraphiQL:       http://{host}:{port}/graphql")
        click.echo(f"Admin token:    {admin}")
        click.echo(f"Customer token: {customer}")
        # Ready to paste into GraphiQL's Headers tab, as they are.
        click.echo(f'Admin headers:    {{"Authorization": "Bearer {admin}"}}')
        click.echo(f'Customer headers: {{"Authorization": "Bearer {customer}"}}')
    else:
        _warn_if_database_unreachable()
    from server.observability.log_config import configure_from
    from server.observability.multiprocess import multiprocess_metrics
    from server.settings import announce_workers

    configure_from(settings)  # uvicorn's own lines too, in LOG_FORMAT (log_config=None)

    announce_workers(workers)  # the workers inherit it: several of them turn local caches off
    # Before any worker imports prometheus-client: it picks its mode on import.
    with multiprocess_metrics(workers=workers):
        _run_uvicorn(settings, host=host, port=port, workers=workers)


def _run_uvicorn(settings: Settings, *, host: str, port: int, workers: int) -> None:
    import uvicorn

    # uvicorn re-raises the SIGTERM it drained for once it is done: a drained stop
    # is a clean one, so it ends with status 0 rather than death by the signal.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    uvicorn.run(
        "server.app:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=settings.log_level,
        log_config=None,
        access_log=False,
        # Client addresses come from TRUSTED_PROXIES only (server/http/client_id.py):
        # uvicorn would otherwise trust X-Forwarded-For from 127.0.0.1.
        proxy_headers=False,
        # A new worker answers uvicorn's first ping only once it has imported the app,
        # which on a loaded 2-core host can take longer than the default 5 s: uvicorn
        # would then kill and respawn it, over and over.
        timeout_worker_healthcheck=60,
        timeout_graceful_shutdown=settings.shutdown_timeout_seconds,
    )


def _check_tracing() -> None:
    """An unknown OTEL_TRACES_EXPORTER stops here in one line, not in every worker."""
    import os

    from server.observability.tracing import exporter_names

    exporter_names(os.environ)


def _exit_cleanly(_signal: int, _frame: FrameType | None) -> None:
    sys.exit(0)


def _warn_if_database_unreachable() -> None:
    from sqlalchemy import text

    from server.cli.errors import one_line
    from server.cli.runtime import cli_engine, run

    async def probe(settings: Settings) -> None:
        engine = cli_engine(settings)
        try:
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        finally:
            await engine.dispose()

    try:
        run(probe)
    except Exception as error:
        reason = one_line(error) or f"{type(error).__name__}: {error}"
        click.echo(
            f"Warning: {reason}. Serving anyway: /readyz (and /health) answers 503"
            " until the database answers.",
            err=True,
        )


async def _prepare_demo(settings: Settings) -> dict[str, str]:
    from sqlalchemy import func, select

    from models import User
    from resolvers.tokens import create_token
    from server.cli.migrate import upgrade
    from server.cli.runtime import cli_engine
    from server.cli.seed import seed
    from server.database import create_sessionmaker

    await upgrade(settings.database_direct_url)
    engine = cli_engine(settings)
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
@click.option("--revision", default="head")
def migrate(revision: str) -> None:
    """Upgrade the database schema (DATABASE_DIRECT_URL, else DATABASE_URL) to REVISION."""
    from server.cli.migrate import upgrade
    from server.cli.runtime import run

    async def go(settings: Settings) -> None:
        await upgrade(settings.database_direct_url, revision)

    run(go)
    click.echo(f"Migrated to {revision}.")


@main.command()
@click.option("--revision", default="base")
@click.confirmation_option(prompt="This drops tables and their data. Continue?")
def downgrade(revision: str) -> None:
    """Downgrade the database schema to REVISION (default: drop everything)."""
    from server.cli.migrate import downgrade as run_downgrade
    from server.cli.runtime import run

    async def go(settings: Settings) -> None:
        await run_downgrade(settings.database_direct_url, revision)

    run(go)
    click.echo(f"Downgraded to {revision}.")


@main.command("seed")
@click.option("--scale", type=click.Choice(["small", "medium", "large"]), default="small")
@click.option("--reset", is_flag=True, help="Wipe a non-empty database first.")
def seed_command(scale: str, reset: bool) -> None:
    """Fill the database with deterministic demo data."""
    from server.cli.runtime import cli_engine, run
    from server.cli.seed import seed

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
        engine = cli_engine(settings)
        try:
            return await seed(engine=engine, scale=scale, reset=reset, progress=progress)
        finally:
            await engine.dispose()

    counts = run(go)
    click.echo("Seeded: " + ", ".join(f"{n} {table}" for table, n in counts.items()))


@main.command("purge-idempotency-keys")
def purge_idempotency_keys() -> None:
    """Delete Idempotency-Key rows older than 24 h (run it daily, e.g. from cron)."""
    from models import utcnow
    from resolvers.idempotency import purge_expired
    from server.cli.runtime import cli_engine, run
    from server.database import create_sessionmaker

    async def go(settings: Settings) -> int:
        engine = cli_engine(settings)
        try:
            return await purge_expired(sessionmaker=create_sessionmaker(engine), now=utcnow())
        finally:
            await engine.dispose()

    click.echo(f"Deleted {run(go)} expired idempotency keys.")


main.add_command(token)
main.add_command(user)
main.add_command(cache)
main.add_command(persisted)
main.add_command(schema_group)


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
