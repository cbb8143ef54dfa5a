"""What the CLI's commands share: checked settings, a bounded engine, one event loop.

Imported by a command when it runs, never by `storefront --help`: this module
pulls in SQLAlchemy.
"""

from __future__ import annotations

import asyncio
import socket
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from server.cli.migrate import CONNECT_TIMEOUT_SECONDS
from server.database import create_engine
from server.settings import Settings

T = TypeVar("T")

DATABASE_SCHEMES = ("postgresql+asyncpg://", "sqlite+aiosqlite://")


def load_settings() -> Settings:
    """Settings from the environment, with a DATABASE_URL the CLI can use."""
    settings = Settings.from_env()
    if not settings.database_url.startswith(DATABASE_SCHEMES):
        scheme = settings.database_url.split("://", 1)[0] if "://" in settings.database_url else ""
        raise click.ClickException(
            f"DATABASE_URL must start with postgresql:// or sqlite:/// (got {scheme or 'no'}"
            " scheme), e.g. postgresql://postgres@127.0.0.1:5432/storefront"
        )
    return settings


def run(go: Callable[[Settings], Awaitable[T]], *, database: bool = True) -> T:
    """Runs `go(settings)` in a fresh event loop (`database`: it opens DATABASE_URL)."""
    settings = load_settings()
    if database:
        _open_sqlite(settings)
    return asyncio.run(go(settings))  # type: ignore[arg-type]


def _open_sqlite(settings: Settings) -> None:
    """Opens a SQLite database once, synchronously, so that a path that cannot be
    opened fails here: aiosqlite reports a failed open from a thread of its own,
    at times after asyncio.run closed the loop, with a traceback of its own."""
    path = settings.sqlite_path()
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    sqlite3.connect(path).close()


def cli_engine(settings: Settings) -> AsyncEngine:
    """The server's engine, but a connection that gets no answer fails after a few seconds."""
    engine = create_engine(settings)
    if not settings.is_sqlite:
        event.listen(engine.sync_engine, "do_connect", _bounded_connect)
    return engine


def _bounded_connect(_dialect: Any, _record: Any, _cargs: Any, cparams: dict[str, Any]) -> None:
    # asyncpg waits 60 s by default for a host that drops packets.
    cparams.setdefault("timeout", CONNECT_TIMEOUT_SECONDS)


def check_port_free(host: str, port: int) -> None:
    """Refuses, in one line, a HOST:PORT that `serve` could not bind."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise click.ClickException(
            f"cannot serve on host {host!r} (HOST or --host): {error.strerror}"
        ) from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        # As uvicorn binds: SO_REUSEADDR, so a port in TIME_WAIT is free, a listening one is not.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as error:
            raise click.ClickException(
                f"cannot serve on {host}:{port}: {error.strerror or error}"
                " (another server running? choose another with PORT or --port)"
            ) from None
