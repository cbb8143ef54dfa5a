"""`storefront webhooks`: rotate the key of the signing secrets, count deliveries."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from server.settings import Settings


@click.group()
def webhooks() -> None:
    """Webhooks: secret-key rotation and delivery counts."""


@webhooks.command("rotate-secrets")
def rotate_secrets() -> None:
    """Re-encrypt every webhook secret under the first WEBHOOK_SECRET_KEY key.

    Rotation: put a new key in front (WEBHOOK_SECRET_KEY=new,old) on every
    process, run this, then drop the old key. Secrets are read with any key
    listed and written with the first; nothing is ever printed.
    """
    from server.cli.runtime import run

    async def go(settings: Settings) -> int:
        from server.cli.runtime import cli_engine
        from server.database import create_sessionmaker
        from server.events.webhooks.secret_box import SecretBox
        from server.events.webhooks.secret_box import rotate_secrets as rotate

        box = SecretBox.from_keys(settings.webhook_secret_key)
        engine = cli_engine(settings)
        try:
            return await rotate(sessionmaker=create_sessionmaker(engine), box=box)
        finally:
            await engine.dispose()

    count = run(go)
    click.echo(f"{count} webhook secret(s) re-encrypted under the first key")


@webhooks.command("deliveries")
def deliveries() -> None:
    """Deliveries by status (pending, delivered, failed)."""
    from server.cli.runtime import run

    async def go(settings: Settings) -> dict[str, int]:
        from server.cli.runtime import cli_engine
        from server.database import create_sessionmaker
        from server.events.webhooks.status import delivery_counts

        engine = cli_engine(settings)
        try:
            return await delivery_counts(create_sessionmaker(engine))
        finally:
            await engine.dispose()

    for status, count in run(go).items():
        click.echo(f"deliveries {status}: {count}")
