"""Settings: every knob of the process, read from the environment in one place."""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path

from server.client_id import Network, parse_networks

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./var/storefront.db"
PERSISTED_QUERY_MODES = ("apq", "trusted", "audit", "off")
LOG_LEVELS = ("info", "debug", "warning", "error", "critical")
# How many processes serve this app on this host. uvicorn and gunicorn read it as
# their default worker count; `storefront serve --workers N` sets it for its workers.
WORKERS_VARIABLE = "WEB_CONCURRENCY"


def normalize_database_url(url: str) -> str:
    """Accept the plain `postgresql://` form operators paste, and use asyncpg for it."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url[len("sqlite:///") :]
    return url


class SettingsError(ValueError):
    """An environment variable has a value that cannot be used."""


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from None


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number (e.g. 0.5), got {raw!r}") from None


def _positive(name: str, value: float) -> None:
    if value <= 0:
        raise SettingsError(f"{name} must be greater than 0, got {value}")


def _non_negative(name: str, value: float) -> None:
    if value < 0:
        raise SettingsError(f"{name} must be 0 or more, got {value}")


def _networks(env: Mapping[str, str], name: str) -> tuple[Network, ...]:
    try:
        return parse_networks(env.get(name) or "")
    except ValueError as error:
        raise SettingsError(
            f"{name} must be a comma-separated list of IP addresses or networks"
            f" (e.g. 10.0.0.0/8, 127.0.0.1): {error}"
        ) from None


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    """One of `choices` (the first is the default), case-insensitive."""
    raw = (env.get(name) or choices[0]).lower()
    if raw not in choices:
        raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name} must be true or false (or 1/0, yes/no, on/off), got {raw!r}")


@dataclass(frozen=True, slots=True)
class Settings:
    """Process configuration; see the README's table for each variable."""

    database_url: str = DEFAULT_DATABASE_URL
    db_pool_size: int = 20
    db_max_overflow: int = 20
    db_pool_timeout: int = 30
    db_pool_recycle: int = 1800
    db_pool_pre_ping: bool = False
    db_echo: bool = False
    redis_url: str | None = None
    redis_timeout_ms: int = 50
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "info"
    workers: int = 1
    environment: str = "development"
    # Limits and rate limiting (README: "Limits and rate limiting").
    max_request_bytes: int = 100 * 1024
    max_query_depth: int = 10
    max_query_aliases: int = 30
    max_query_directives: int = 50
    max_query_tokens: int = 2000
    max_query_cost: int = 1000
    introspection: bool = True
    graphiql: bool = True
    rate_limit_enabled: bool = True
    rate_limit_maximum: int = 2000
    rate_limit_restore_rate: float = 100.0
    admin_rate_limit_maximum: int = 20_000
    admin_rate_limit_restore_rate: float = 1000.0
    trusted_proxies: tuple[Network, ...] = ()
    db_statement_timeout_ms: int = 5000
    execution_timeout_ms: int = 10_000
    auth_cache_seconds: float = 5.0
    auth_stale_seconds: float = 60.0
    auth_failure_limit: int = 20
    auth_failure_restore_rate: float = 0.5
    # Transport (README: "Persisted queries", "Batching", "GraphQL over HTTP").
    persisted_queries: str = "apq"
    trusted_documents_allow_admin: bool = False
    persisted_queries_manifest: str | None = None
    apq_ttl_seconds: int = 86_400
    apq_max_document_bytes: int = 20 * 1024
    apq_registrations_per_client: int = 100
    apq_registration_window_seconds: int = 3600
    apq_memory_entries: int = 10_000
    apq_memory_bytes: int = 32 * 1024 * 1024
    persisted_document_cache_size: int = 1000
    max_batch: int = 10
    cors_allowed_origins: tuple[str, ...] = ()
    # Result cache (README: "Result cache").
    cache_enabled: bool = True
    cache_memory_bytes: int = 64 * 1024 * 1024
    cache_redis_timeout_ms: int = 50
    cache_stale_while_revalidate: int = 30
    cache_stale_if_error: int = 300
    cache_lock_wait_ms: int = 1000
    cache_entity_ttl: int = 300
    extra: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        environment = (env.get("ENVIRONMENT") or "development").lower()
        redis_timeout_ms = _int(env, "REDIS_TIMEOUT_MS", 50)
        settings = cls(
            database_url=normalize_database_url(env.get("DATABASE_URL") or DEFAULT_DATABASE_URL),
            db_pool_size=_int(env, "DB_POOL_SIZE", 20),
            db_max_overflow=_int(env, "DB_MAX_OVERFLOW", 20),
            db_pool_timeout=_int(env, "DB_POOL_TIMEOUT", 30),
            db_pool_recycle=_int(env, "DB_POOL_RECYCLE", 1800),
            db_pool_pre_ping=_bool(env, "DB_POOL_PRE_PING", False),
            db_echo=_bool(env, "DB_ECHO", False),
            redis_url=env.get("REDIS_URL") or None,
            redis_timeout_ms=redis_timeout_ms,
            host=env.get("HOST") or "127.0.0.1",
            port=_int(env, "PORT", 8000),
            log_level=_choice(env, "LOG_LEVEL", LOG_LEVELS),
            workers=_int(env, WORKERS_VARIABLE, 1),
            environment=environment,
            max_request_bytes=_int(env, "MAX_REQUEST_BYTES", 100 * 1024),
            max_query_depth=_int(env, "MAX_QUERY_DEPTH", 10),
            max_query_aliases=_int(env, "MAX_QUERY_ALIASES", 30),
            max_query_directives=_int(env, "MAX_QUERY_DIRECTIVES", 50),
            max_query_tokens=_int(env, "MAX_QUERY_TOKENS", 2000),
            max_query_cost=_int(env, "MAX_QUERY_COST", 1000),
            introspection=_bool(env, "INTROSPECTION", environment != "production"),
            graphiql=_bool(env, "GRAPHIQL", environment != "production"),
            rate_limit_enabled=_bool(env, "RATE_LIMIT_ENABLED", True),
            rate_limit_maximum=_int(env, "RATE_LIMIT_MAXIMUM", 2000),
            rate_limit_restore_rate=_float(env, "RATE_LIMIT_RESTORE_RATE", 100.0),
            admin_rate_limit_maximum=_int(env, "ADMIN_RATE_LIMIT_MAXIMUM", 20_000),
            admin_rate_limit_restore_rate=_float(env, "ADMIN_RATE_LIMIT_RESTORE_RATE", 1000.0),
            trusted_proxies=_networks(env, "TRUSTED_PROXIES"),
            db_statement_timeout_ms=_int(env, "DB_STATEMENT_TIMEOUT_MS", 5000),
            execution_timeout_ms=_int(env, "EXECUTION_TIMEOUT_MS", 10_000),
            auth_cache_seconds=_int(env, "AUTH_CACHE_SECONDS", 5),
            auth_stale_seconds=_float(env, "AUTH_STALE_SECONDS", 60.0),
            auth_failure_limit=_int(env, "AUTH_FAILURE_LIMIT", 20),
            auth_failure_restore_rate=_float(env, "AUTH_FAILURE_RESTORE_RATE", 0.5),
            persisted_queries=_choice(env, "PERSISTED_QUERIES", PERSISTED_QUERY_MODES),
            trusted_documents_allow_admin=_bool(env, "TRUSTED_DOCUMENTS_ALLOW_ADMIN", False),
            persisted_queries_manifest=env.get("PERSISTED_QUERIES_MANIFEST") or None,
            apq_ttl_seconds=_int(env, "APQ_TTL_SECONDS", 86_400),
            apq_max_document_bytes=_int(env, "APQ_MAX_DOCUMENT_BYTES", 20 * 1024),
            apq_registrations_per_client=_int(env, "APQ_REGISTRATIONS_PER_CLIENT", 100),
            apq_registration_window_seconds=_int(env, "APQ_REGISTRATION_WINDOW_SECONDS", 3600),
            apq_memory_entries=_int(env, "APQ_MEMORY_ENTRIES", 10_000),
            apq_memory_bytes=_int(env, "APQ_MEMORY_BYTES", 32 * 1024 * 1024),
            persisted_document_cache_size=_int(env, "PERSISTED_DOCUMENT_CACHE_SIZE", 1000),
            max_batch=_int(env, "MAX_BATCH", 10),
            cors_allowed_origins=tuple(
                origin.strip()
                for origin in (env.get("CORS_ALLOWED_ORIGINS") or "").split(",")
                if origin.strip()
            ),
            cache_enabled=_bool(env, "CACHE_ENABLED", True),
            cache_memory_bytes=_int(env, "CACHE_MEMORY_BYTES", 64 * 1024 * 1024),
            cache_redis_timeout_ms=_int(env, "CACHE_REDIS_TIMEOUT_MS", redis_timeout_ms),
            cache_stale_while_revalidate=_int(env, "CACHE_STALE_WHILE_REVALIDATE", 30),
            cache_stale_if_error=_int(env, "CACHE_STALE_IF_ERROR", 300),
            cache_lock_wait_ms=_int(env, "CACHE_LOCK_WAIT_MS", 1000),
            cache_entity_ttl=_int(env, "CACHE_ENTITY_TTL", 300),
        )
        if not 0 <= settings.port <= 65535:
            raise SettingsError(f"PORT must be between 0 and 65535, got {settings.port}")
        for name, value in (
            ("MAX_REQUEST_BYTES", settings.max_request_bytes),
            ("MAX_QUERY_DEPTH", settings.max_query_depth),
            ("MAX_QUERY_TOKENS", settings.max_query_tokens),
            ("MAX_QUERY_COST", settings.max_query_cost),
            ("RATE_LIMIT_MAXIMUM", settings.rate_limit_maximum),
            ("RATE_LIMIT_RESTORE_RATE", settings.rate_limit_restore_rate),
            ("ADMIN_RATE_LIMIT_MAXIMUM", settings.admin_rate_limit_maximum),
            ("ADMIN_RATE_LIMIT_RESTORE_RATE", settings.admin_rate_limit_restore_rate),
            ("APQ_TTL_SECONDS", settings.apq_ttl_seconds),
            ("APQ_MAX_DOCUMENT_BYTES", settings.apq_max_document_bytes),
            ("APQ_REGISTRATION_WINDOW_SECONDS", settings.apq_registration_window_seconds),
            ("APQ_MEMORY_ENTRIES", settings.apq_memory_entries),
            ("APQ_MEMORY_BYTES", settings.apq_memory_bytes),
            ("PERSISTED_DOCUMENT_CACHE_SIZE", settings.persisted_document_cache_size),
            ("MAX_BATCH", settings.max_batch),
            (WORKERS_VARIABLE, settings.workers),
            ("AUTH_FAILURE_LIMIT", settings.auth_failure_limit),
            ("AUTH_FAILURE_RESTORE_RATE", settings.auth_failure_restore_rate),
        ):
            _positive(name, value)
        for name, value in (
            ("CACHE_MEMORY_BYTES", settings.cache_memory_bytes),
            ("REDIS_TIMEOUT_MS", settings.redis_timeout_ms),
            ("CACHE_REDIS_TIMEOUT_MS", settings.cache_redis_timeout_ms),
        ):
            _positive(name, value)
        for name, value in (
            ("APQ_REGISTRATIONS_PER_CLIENT", settings.apq_registrations_per_client),
            ("CACHE_STALE_WHILE_REVALIDATE", settings.cache_stale_while_revalidate),
            ("CACHE_STALE_IF_ERROR", settings.cache_stale_if_error),
            ("CACHE_LOCK_WAIT_MS", settings.cache_lock_wait_ms),
            ("CACHE_ENTITY_TTL", settings.cache_entity_ttl),
            ("AUTH_STALE_SECONDS", settings.auth_stale_seconds),
        ):
            _non_negative(name, value)
        return settings

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def sqlite_path(self) -> Path | None:
        """The database file of a SQLite URL (None for PostgreSQL or memory)."""
        if not self.is_sqlite:
            return None
        path = self.database_url.split(":///", 1)[1] if ":///" in self.database_url else ""
        return Path(path.split("?", 1)[0]) if path and path != ":memory:" else None


def announce_workers(workers: int, env: MutableMapping[str, str] | None = None) -> None:
    """Tell the worker processes about to be started (they inherit `env`) how many there are.

    Each worker's caches depend on it (server/caching.py): in-process caches are
    only safe in a process that has no siblings.
    """
    (os.environ if env is None else env)[WORKERS_VARIABLE] = str(workers)
