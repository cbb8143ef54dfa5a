"""DATABASE_REPLICA_URLS: comma-separated PostgreSQL URLs, each checked when read."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from server.setting_fields import Reader, SettingsError

_PASSWORD = re.compile(r"(//[^:/@]*:)[^@]*@")


def masked(url: str) -> str:
    """`url` without its password, for messages and logs."""
    return _PASSWORD.sub(r"\1***@", url)


def _asyncpg(url: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url


def _replica_urls(name: str, raw: str) -> tuple[str, ...]:
    urls = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        url = _asyncpg(item)
        # urllib, not SQLAlchemy: settings are read by light CLI commands too.
        try:
            parsed = urlsplit(url)
            parsed.port  # noqa: B018 - a port that is not a number raises here
        except ValueError as error:
            raise SettingsError(
                f"{name} must be comma-separated postgresql://user@host:port/db URLs:"
                f" {masked(item)!r} does not parse ({error})"
            ) from None
        database = parsed.path.lstrip("/")
        if parsed.scheme != "postgresql+asyncpg" or not parsed.hostname or not database:
            raise SettingsError(
                f"{name} must be comma-separated postgresql://user@host:port/db URLs"
                f" (with a host and a database): got {masked(item)!r}"
            )
        urls.append(url)
    return tuple(urls)


REPLICA_URLS = Reader(_replica_urls, "comma-separated `postgresql://…` URLs")
