"""`storefront token` and `storefront user`: API tokens, and the one way to change a role."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from server.settings import Settings

# models.ROLES, spelled out so `--help` need not import the models (a test keeps them equal).
ROLES = ("customer", "admin")


@click.group()
def token() -> None:
    """Create, list and revoke API tokens."""


@token.command("create")
@click.option("--email", required=True)
@click.option(
    "--role",
    type=click.Choice(ROLES),
    default=None,
    help="Role of a new user (default: customer). An existing user's role must match:"
    " change it with `storefront user set-role`.",
)
@click.option("--name", default=None, help="Name of a new user (default: from the email).")
def token_create(email: str, role: str | None, name: str | None) -> None:
    """Print a new token for EMAIL (shown once), creating the user if new."""
    from resolvers.tokens import RoleMismatch, create_token
    from server.cli.runtime import cli_engine, run
    from server.database import create_sessionmaker

    async def go(settings: Settings) -> Any:
        engine = cli_engine(settings)
        try:
            return await create_token(
                sessionmaker=create_sessionmaker(engine), email=email, role=role, name=name
            )
        finally:
            await engine.dispose()

    try:
        issued = run(go)
    except RoleMismatch as error:
        raise click.ClickException(
            f"{error.email} is a {error.role}; `token create` never changes a role. To make"
            f" them {error.requested}: storefront user set-role --email {error.email}"
            f" {error.requested}"
        ) from None
    verb = "Created user" if issued.created_user else "User"
    click.echo(f"{verb} {issued.email} ({issued.role}). Token (shown once): {issued.token}")


@token.command("list")
@click.option("--email", required=True)
def token_list(email: str) -> None:
    """List the tokens of EMAIL (ids and dates; tokens themselves are never stored)."""
    from resolvers.tokens import list_tokens
    from server.cli.runtime import cli_engine, run
    from server.database import create_sessionmaker

    async def go(settings: Settings) -> Any:
        engine = cli_engine(settings)
        try:
            return await list_tokens(sessionmaker=create_sessionmaker(engine), email=email)
        finally:
            await engine.dispose()

    tokens = run(go)
    if not tokens:
        click.echo(f"{email.strip().lower()} has no tokens.", err=True)
    for info in tokens:
        state = f"revoked {info.revoked_at.isoformat()}" if info.revoked_at else "active"
        click.echo(f"{info.id}\t{info.email}\tcreated {info.created_at.isoformat()}\t{state}")


@token.command("revoke")
@click.argument("token_or_id")
def token_revoke(token_or_id: str) -> None:
    """Revoke a token, given as its text or its id."""
    from resolvers.tokens import revoke_token
    from server.cli.runtime import cli_engine, run
    from server.database import create_sessionmaker

    async def go(settings: Settings) -> int:
        engine = cli_engine(settings)
        try:
            return await revoke_token(
                sessionmaker=create_sessionmaker(engine), token_or_id=token_or_id
            )
        finally:
            await engine.dispose()

    click.echo(f"Revoked token {run(go)}.")


@click.group()
def user() -> None:
    """Manage users."""


@user.command("set-role")
@click.option("--email", required=True)
@click.argument("role", type=click.Choice(ROLES))
def user_set_role(email: str, role: str) -> None:
    """Give the user EMAIL the role ROLE. Their existing tokens carry it too, from
    their next request (within AUTH_CACHE_SECONDS)."""
    from resolvers.roles import set_role
    from server.cli.runtime import cli_engine, run
    from server.database import create_sessionmaker

    async def go(settings: Settings) -> Any:
        engine = cli_engine(settings)
        try:
            return await set_role(sessionmaker=create_sessionmaker(engine), email=email, role=role)
        finally:
            await engine.dispose()

    change = run(go)
    if change.changed:
        click.echo(f"Changed the role of {change.email}: {change.old} -> {change.new}.")
    else:
        click.echo(f"{change.email} is already {change.new}; nothing changed.")
