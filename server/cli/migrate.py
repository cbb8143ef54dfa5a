"""Schema migrations: alembic's upgrade, downgrade and current, callable from async code.

Alembic's commands are synchronous and its async env.py would start an event
loop of its own. Here the command runs inside `AsyncConnection.run_sync` on a
connection we open, and env.py uses that connection, so these functions work
from a running loop (the CLI, the app's tests, pytest-asyncio fixtures).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from server.settings import Settings, normalize_database_url

if TYPE_CHECKING:
    # Alembic is imported once the database has answered: a CLI command that
    # cannot connect says so without loading it.
    from alembic.config import Config

SCRIPT_LOCATION = Path(__file__).resolve().parents[2] / "alembic"
CONNECT_TIMEOUT_SECONDS = 5.0
"""How long a migration (or a CLI command) waits for PostgreSQL to accept a connection:
asyncpg's own default, 60 s, is a long time to stare at a host that drops packets."""


def alembic_config(database_url: str) -> Config:
    """An alembic Config for this repo's migrations, built without alembic.ini."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.set_main_option("path_separator", "os")
    config.attributes["database_url"] = normalize_database_url(database_url)
    return config


def _engine(database_url: str) -> AsyncEngine:
    settings = Settings(database_url=normalize_database_url(database_url))
    # No pool: a migration is a one-off, and SQLite must not keep the file open.
    connect_args = {} if settings.is_sqlite else {"timeout": CONNECT_TIMEOUT_SECONDS}
    engine = create_async_engine(
        settings.database_url, poolclass=NullPool, connect_args=connect_args
    )
    if settings.is_sqlite:
        path = settings.sqlite_path()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        # The sqlite3 module only opens a transaction before DML, so DDL would
        # commit statement by statement; BEGIN ourselves to make a migration
        # all-or-nothing, as on PostgreSQL.
        event.listen(engine.sync_engine, "connect", _sqlite_manual_transactions)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
    return engine


def _sqlite_manual_transactions(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None


def _sqlite_begin(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN")


def _command() -> ModuleType:
    from alembic import command

    return command


async def _run(database_url: str, run: Callable[[Config], None]) -> None:
    engine = _engine(database_url)

    def in_connection(connection: Connection) -> None:
        config = alembic_config(database_url)
        config.attributes["connection"] = connection
        run(config)

    try:
        async with engine.begin() as connection:
            await connection.run_sync(in_connection)
    finally:
        await engine.dispose()


async def upgrade(database_url: str, revision: str = "head") -> None:
    """Migrate the database at `database_url` up to `revision`."""
    await _run(database_url, lambda config: _command().upgrade(config, revision))


async def downgrade(database_url: str, revision: str = "base") -> None:
    """Migrate the database at `database_url` down to `revision` (`base`: no tables)."""
    await _run(database_url, lambda config: _command().downgrade(config, revision))


async def current(database_url: str) -> str | None:
    """The revision the database is at, or None if it was never migrated."""
    engine = _engine(database_url)

    def revision(connection: Connection) -> str | None:
        from alembic.runtime.migration import MigrationContext

        return MigrationContext.configure(connection).get_current_revision()

    try:
        async with engine.connect() as connection:
            return await connection.run_sync(revision)
    finally:
        await engine.dispose()
