"""One line for each failure the CLI can foresee, instead of a traceback.

The `storefront` group passes any exception a command raises to `one_line`;
a foreseen one becomes `Error: <line>` on stderr and exit status 1, anything
else keeps its traceback. `--debug` (or LOG_LEVEL=debug) keeps every traceback.
Heavy modules are imported here only once something has failed.

Example:
    one_line(ConnectionRefusedError(111, "Connect call failed"))
    # -> "cannot connect to PostgreSQL at 127.0.0.1:5432 (connection refused):
    #     is PostgreSQL running? (DATABASE_URL)"
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

_NOT_MIGRATED = "the database has no tables yet: run `storefront migrate` first (DATABASE_URL)"


@dataclass(frozen=True, slots=True)
class _Target:
    """Where a URL points, for messages (never its password)."""

    scheme: str
    host: str
    port: int | None
    user: str
    path: str

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}" if self.port else self.host

    @property
    def database(self) -> str:
        return self.path.lstrip("/")


def _target(url: str, default_port: int) -> _Target:
    parts = urlsplit(url)
    try:
        port = parts.port or default_port
    except ValueError:
        port = default_port
    return _Target(
        scheme=parts.scheme,
        host=parts.hostname or "localhost",
        port=port,
        user=unquote(parts.username or ""),
        path=unquote(parts.path),
    )


def database_target() -> _Target:
    from server.settings import DEFAULT_DATABASE_URL

    return _target(os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL, 5432)


def redis_target() -> _Target:
    return _target(os.environ.get("REDIS_URL") or "redis://localhost", 6379)


def _chain(error: BaseException) -> Iterator[BaseException]:
    """The error, what caused it, and a DBAPI error's driver exception, each once."""
    seen: set[int] = set()
    pending = [error]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for linked in (current.__cause__, current.__context__, getattr(current, "orig", None)):
            if isinstance(linked, BaseException):
                pending.append(linked)


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def one_line(error: BaseException) -> str | None:
    """A one-line explanation of `error`, or None when it was not foreseen."""
    for link in _chain(error):
        message = _explain(link)
        if message is not None:
            return message
    return None


def _explain(error: BaseException) -> str | None:
    module = type(error).__module__.split(".")[0]
    if module == "click":
        return None
    from server.settings import SettingsError

    if isinstance(error, SettingsError):
        return str(error)
    if module == "resolvers" or type(error).__name__ in {
        "SeedError",
        "ManifestError",
        "SecretKeyError",
    }:
        return _first_line(error)
    if module == "asyncpg":
        return _postgres(error)
    if module == "redis":
        return _redis(error)
    if type(error).__name__ in {"CacheUnavailable", "PersistedQueryStoreUnavailable"}:
        return f"Redis at {redis_target().address} (REDIS_URL): {_first_line(error)}"
    if module == "sqlite3":
        return _sqlite(error)
    if isinstance(error, socket.gaierror):
        host = database_target().host
        return f"cannot resolve the database host {host!r} (DATABASE_URL): {error.strerror}"
    if isinstance(error, TimeoutError):
        from server.cli.migrate import CONNECT_TIMEOUT_SECONDS

        database = database_target()
        return (
            f"PostgreSQL at {database.address} did not answer within"
            f" {CONNECT_TIMEOUT_SECONDS:g} s: is it running and reachable? (DATABASE_URL)"
        )
    if isinstance(error, OSError) and _is_connect_failure(error):
        reason = "connection refused" if error.errno == errno.ECONNREFUSED else _first_line(error)
        return (
            f"cannot connect to PostgreSQL at {database_target().address} ({reason}):"
            " is PostgreSQL running? (DATABASE_URL)"
        )
    if isinstance(error, OSError) and error.filename is not None:
        # e.g. the folder of a SQLite DATABASE_URL that cannot be created
        return f"{error.filename}: {error.strerror or error}"
    if module == "sqlalchemy" and type(error).__name__ in {"NoSuchModuleError", "ArgumentError"}:
        return f"DATABASE_URL is not usable: {_first_line(error)}"
    return None


def _is_connect_failure(error: OSError) -> bool:
    # asyncpg raises a bare OSError("Multiple exceptions: ...") when every
    # address of the host refused.
    text = str(error)
    return (
        isinstance(error, ConnectionError)
        or "Connect call failed" in text
        or text.startswith("Multiple exceptions")
    )


def _postgres(error: BaseException) -> str:
    import asyncpg.exceptions as pg

    database = database_target()
    if isinstance(error, pg.InvalidCatalogNameError):
        return (
            f"database {database.database!r} does not exist on {database.address}: create it"
            f" (createdb -h {database.host} -p {database.port} -U {database.user or 'postgres'}"
            f" {database.database}) or fix DATABASE_URL"
        )
    if isinstance(error, pg.InvalidAuthorizationSpecificationError | pg.InvalidPasswordError):
        return (
            f"PostgreSQL at {database.address} refused the connection: {_first_line(error)}"
            " (check the user and password in DATABASE_URL)"
        )
    if isinstance(error, pg.UndefinedTableError):
        return _NOT_MIGRATED
    return f"PostgreSQL at {database.address}: {_first_line(error)}"


def _sqlite(error: BaseException) -> str:
    text = _first_line(error)
    if text.startswith("no such table"):
        return _NOT_MIGRATED
    if "unable to open database file" in text:
        from server.settings import DEFAULT_DATABASE_URL

        url = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
        path = url.split(":///", 1)[-1]
        return f"cannot open the SQLite database {path!r}: {text} (DATABASE_URL)"
    return f"SQLite: {text}"


def _redis(error: BaseException) -> str:
    redis = redis_target()
    if type(error).__name__ in {"ConnectionError", "TimeoutError"}:
        return (
            f"cannot connect to Redis at {redis.address} ({_first_line(error)}):"
            " is Redis running? (REDIS_URL)"
        )
    return f"Redis at {redis.address} (REDIS_URL): {_first_line(error)}"
