"""Settings: every knob of the process, each declared once as an environment variable.

A `Settings` field is declared with `setting(...)`: its variable, default, how the
variable is read, what it accepts and its README row. `Settings.from_env` reads them all
in one loop; `server/cli/settings_doc.py` renders README's configuration table from them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from dataclasses import Field, dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from server.http.client_id import Network
from server.replicas.urls import REPLICA_URLS
from server.setting_fields import (
    FLAG,
    GC_THRESHOLD_RANGE,
    NETWORKS,
    NON_NEGATIVE,
    NUMBER,
    ORIGINS,
    PORT_RANGE,
    POSITIVE,
    THRESHOLDS,
    WHOLE,
    Bound,
    Variable,
    between,
    choice,
    setting,
    text,
)
from server.setting_fields import SettingsError as SettingsError  # raised by from_env

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./var/storefront.db"
PERSISTED_QUERY_MODES = ("apq", "trusted", "audit", "off")
LOG_LEVELS = ("info", "debug", "warning", "error", "critical")
LOG_FORMATS = ("text", "json")
GRAPHQL_EXECUTIONS = ("compiled", "graphql-core", "compare")  # schema.executor.EXECUTIONS
EVENTS_RELAY_MODES = ("auto", "server", "worker")
DB_POOLERS = ("none", "pgbouncer")
# How many processes serve this app on this host. uvicorn and gunicorn read it as
# their default worker count; `storefront serve --workers N` sets it for its workers.
WORKERS_VARIABLE = "WEB_CONCURRENCY"

_T = TypeVar("_T")
# Chosen from bench/gc_pauses.py (README: "The garbage collector").
GC_THRESHOLDS = (50_000, 20, 100)
# Connections one host's workers keep open by default (README: "Pool defaults").
POOL_PER_HOST = 25


def normalize_database_url(url: str) -> str:
    """Accept the plain `postgresql://` form operators paste, and use asyncpg for it."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url[len("sqlite:///") :]
    return url


def _unless_production(values: Mapping[str, Any]) -> bool:
    return bool(values["environment"] != "production")


@dataclass(frozen=True, slots=True)
class Settings:
    """Process configuration: one field per environment variable (README's table)."""

    # Database.
    database_url: str = setting(
        "DATABASE_URL",
        DEFAULT_DATABASE_URL,
        text("`postgresql://…` or `sqlite:///…` URL", normalize_database_url),
        "`postgresql://user@host/db` (asyncpg is used) or a SQLite file"
        " (WAL mode, foreign keys on)",
    )
    workers: int = setting(
        WORKERS_VARIABLE,
        1,
        WHOLE,
        "worker processes serving the app on this host; `storefront serve --workers N` sets"
        " it for its workers (uvicorn and gunicorn read it as their default). Above 1 without"
        ' `REDIS_URL`, the result and entity caches are off (see "Several processes")',
        bound=POSITIVE,
    )
    db_pool_size: int = setting(
        "DB_POOL_SIZE",
        POOL_PER_HOST,
        WHOLE,
        "PostgreSQL connections kept open per process (sibling loader batches of one request"
        " run concurrently, each on its own connection): the host's 25 shared by its workers,"
        ' at least 5 each (see "PgBouncer and the connection budget")',
        derive=lambda values: max(5, POOL_PER_HOST // max(1, values["workers"])),
        shown_default="`25 / WEB_CONCURRENCY`, at least 5",
    )
    db_max_overflow: int = setting(
        "DB_MAX_OVERFLOW",
        0,
        WHOLE,
        "extra connections allowed under load, each closed again when returned (so opened"
        ' again at the next peak: see "Pool defaults")',
    )
    db_pool_timeout: int = setting(
        "DB_POOL_TIMEOUT", 30, WHOLE, "seconds to wait for a free connection"
    )
    db_pool_recycle: int = setting(
        "DB_POOL_RECYCLE", 1800, WHOLE, "seconds after which a connection is replaced"
    )
    db_pool_pre_ping: bool = setting(
        "DB_POOL_PRE_PING",
        False,
        FLAG,
        "check each connection on checkout: survives database restarts without a failed"
        " request, at one round trip per checkout (~3 ms CPU per dashboard request in"
        " `bench.dashboard`); stale connections are otherwise replaced on first error and by"
        " `DB_POOL_RECYCLE`",
    )
    db_echo: bool = setting("DB_ECHO", False, FLAG, "log every SQL statement")
    db_statement_timeout_ms: int = setting(
        "DB_STATEMENT_TIMEOUT_MS",
        5000,
        WHOLE,
        "PostgreSQL `statement_timeout` of the server's statements (`0`: none): a startup"
        " parameter of each connection, or with `DB_POOLER=pgbouncer` a `SET LOCAL` at the"
        " start of each transaction",
    )
    db_pooler: str = setting(
        "DB_POOLER",
        "none",
        choice(DB_POOLERS),
        "what `DATABASE_URL` reaches: `none`, PostgreSQL itself; `pgbouncer`, a PgBouncer in"
        " transaction mode: no session state is relied on (statement timeouts per transaction,"
        ' unnamed prepared statements; see "PgBouncer and the connection budget")',
    )
    database_direct_url: str = setting(
        "DATABASE_DIRECT_URL",
        "",
        text("`postgresql://…` URL", normalize_database_url),
        "PostgreSQL itself, past any pooler, for what needs a session of its own: `storefront"
        " migrate` (and `downgrade`, `serve --demo`) and `LISTEN`; unset: `DATABASE_URL`",
        shown_default="`DATABASE_URL`",
    )
    db_connection_share: float = setting(
        "DB_CONNECTION_SHARE",
        0.8,
        NUMBER,
        "share of PostgreSQL's `max_connections` this host's workers may hold; at startup a"
        " process warns (one line, with the arithmetic) when `(DB_POOL_SIZE + DB_MAX_OVERFLOW)"
        ' * WEB_CONCURRENCY` exceeds it (see "PgBouncer and the connection budget")',
        bound=Bound(lambda value: 0 < value <= 1, "above 0 and at most 1", "in (0, 1]"),
    )
    # Read replicas (README: "Read replicas").
    database_replica_urls: tuple[str, ...] = setting(
        "DATABASE_REPLICA_URLS",
        (),
        REPLICA_URLS,
        "streaming replicas of the PostgreSQL `DATABASE_URL` that queries' reads go to"
        " (writes, a mutation's answer and a client's reads just after its write go to the"
        " primary); one that is a primary is refused with a warning",
    )
    replica_max_lag_seconds: float = setting(
        "REPLICA_MAX_LAG_SECONDS",
        5.0,
        NUMBER,
        "a replica further behind the primary than this is skipped until it catches up",
        bound=POSITIVE,
    )
    replica_sticky_seconds: float = setting(
        "REPLICA_STICKY_SECONDS",
        5.0,
        NUMBER,
        "after a write whose WAL position could not be read, how long its client reads the primary",
        bound=NON_NEGATIVE,
    )
    # Authentication.
    auth_cache_seconds: float = setting(
        "AUTH_CACHE_SECONDS",
        5.0,
        WHOLE,
        "how long a process remembers an authenticated token (by its SHA-256): a revoked"
        " token stops working within this time; `0` looks every token up on every request",
    )
    auth_stale_seconds: float = setting(
        "AUTH_STALE_SECONDS",
        60.0,
        NUMBER,
        "while, and only while, the database is unreachable, a token the process knew keeps"
        " working this long past `AUTH_CACHE_SECONDS`, so signed-in clients are still served"
        " public answers from the result cache during an outage",
        bound=NON_NEGATIVE,
    )
    auth_failure_limit: int = setting(
        "AUTH_FAILURE_LIMIT",
        20,
        WHOLE,
        "failed authentications (401s) an address may make before it gets `429` (a token"
        " bucket per address, in Redis with `REDIS_URL`; off with `RATE_LIMIT_ENABLED=false`)",
        bound=POSITIVE,
    )
    auth_failure_restore_rate: float = setting(
        "AUTH_FAILURE_RESTORE_RATE",
        0.5,
        NUMBER,
        "failed authentications given back per second",
        bound=POSITIVE,
    )
    # The process.
    host: str = setting(
        "HOST", "127.0.0.1", text("host name or address"), "interface `storefront serve` binds"
    )
    port: int = setting("PORT", 8000, WHOLE, "port `storefront serve` binds", bound=PORT_RANGE)
    worker_port: int = setting(
        "WORKER_PORT",
        0,
        WHOLE,
        "port on HOST where `storefront worker` serves `/livez`, `/readyz` and `/metrics`"
        " (0: none)",
        bound=PORT_RANGE,
    )
    log_level: str = setting(
        "LOG_LEVEL",
        "info",
        choice(LOG_LEVELS),
        "`debug` also makes the CLI print tracebacks; every line's message has its control"
        " characters escaped (`\\n`, `\\x1b`): client strings cannot forge lines",
    )
    log_format: str = setting(
        "LOG_FORMAT",
        "text",
        choice(LOG_FORMATS),
        "`text`: `key=value` pairs (quoted when needed), `json`: one JSON object per line;"
        ' both carry the request log\'s keys (see "Logs")',
    )
    slow_operation_ms: int = setting(
        "SLOW_OPERATION_MS",
        500,
        WHOLE,
        "an operation taking longer is logged again at `warning`, with its document hash and"
        " SQL statement count",
        bound=NON_NEGATIVE,
    )
    metrics_enabled: bool = setting(
        "METRICS_ENABLED",
        True,
        FLAG,
        'Prometheus metrics at `GET /metrics` (see "Metrics"); when off, nothing is counted'
        " and `/metrics` is `404`",
    )
    environment: str = setting(
        "ENVIRONMENT",
        "development",
        text("a name (lower-cased)", str.lower),
        "`production` for production deployments",
    )
    # Probes and shutdown (README: "Probes", "Shutdown").
    readiness_timeout_ms: int = setting(
        "READINESS_TIMEOUT_MS",
        1000,
        WHOLE,
        "longest wait of `/readyz` for the database and for Redis before it calls them down",
        bound=POSITIVE,
    )
    shutdown_grace_seconds: int = setting(
        "SHUTDOWN_GRACE_SECONDS",
        5,
        WHOLE,
        "after SIGTERM, `/readyz` answers `503` and new connections are still served this"
        " long, so load balancers notice before the server stops accepting",
        bound=NON_NEGATIVE,
    )
    shutdown_timeout_seconds: int = setting(
        "SHUTDOWN_TIMEOUT_SECONDS",
        30,
        WHOLE,
        "then, how long requests in flight may take to finish before they are cancelled",
        bound=NON_NEGATIVE,
    )
    # The garbage collector (server/lifecycle/gc_tuning.py).
    gc_tuning: bool = setting(
        "GC_TUNING",
        True,
        FLAG,
        "after startup, each worker collects once and freezes every object then alive"
        " (`gc.freeze`: later collections never walk them) and sets `GC_THRESHOLDS`;"
        " `false` leaves Python's collector as it is",
    )
    gc_thresholds: tuple[int, int, int] = setting(
        "GC_THRESHOLDS",
        GC_THRESHOLDS,
        THRESHOLDS,
        "the collector's thresholds (`gc.set_threshold`) with `GC_TUNING`: net allocations"
        " before the youngest generation is collected, then collections of each generation"
        " before the next one's (Python's own: `700,10,10`)",
        bound=GC_THRESHOLD_RANGE,
        shown_default="`" + ",".join(map(str, GC_THRESHOLDS)) + "`",
    )
    # Redis.
    redis_url: str | None = setting(
        "REDIS_URL",
        None,
        text("`redis://…` URL"),
        "Redis shared by every worker and instance (rate-limit buckets, persisted queries,"
        " result cache); unset: kept in process, and the result cache is for a single process"
        ' only (see "Several processes")',
    )
    redis_timeout_ms: int = setting(
        "REDIS_TIMEOUT_MS",
        50,
        WHOLE,
        "longest wait for Redis per call of the rate limiter and the persisted-query store"
        " (socket timeouts, no retries); slower or down, each store's breaker opens"
        ' (see "When Redis fails")',
        bound=POSITIVE,
    )
    # Events (README: "Events").
    events_relay: str = setting(
        "EVENTS_RELAY",
        "auto",
        choice(EVENTS_RELAY_MODES),
        "where the outbox relay runs: `server` (inside each `storefront serve` process),"
        " `worker` (only in `storefront worker` processes), `auto`: `server` without"
        " `REDIS_URL`, else `worker`",
    )
    events_poll_interval_ms: int = setting(
        "EVENTS_POLL_INTERVAL_MS",
        500,
        WHOLE,
        "the relay's polling fallback: it looks at the outbox at least this often (on"
        " PostgreSQL a commit's NOTIFY wakes it at once)",
        bound=POSITIVE,
    )
    events_batch_size: int = setting(
        "EVENTS_BATCH_SIZE",
        200,
        WHOLE,
        "outbox rows the relay publishes per transaction",
        bound=POSITIVE,
    )
    fault_kill_after_commit: bool = setting(
        "FAULT_KILL_AFTER_COMMIT",
        False,
        FLAG,
        "fault injection for tests: the process SIGKILLs itself right after a write's"
        " commit, before it announces the write's events (never set it in production)",
    )
    # Limits (README: "Limits and rate limiting").
    max_request_bytes: int = setting(
        "MAX_REQUEST_BYTES",
        100 * 1024,
        WHOLE,
        "largest request body; a larger one is `413`",
        bound=POSITIVE,
    )
    max_query_depth: int = setting(
        "MAX_QUERY_DEPTH",
        10,
        WHOLE,
        "deepest field nesting (`QUERY_TOO_DEEP`)",
        bound=POSITIVE,
    )
    max_query_aliases: int = setting(
        "MAX_QUERY_ALIASES",
        30,
        WHOLE,
        "aliases per operation, fragments expanded (`QUERY_TOO_COMPLEX`)",
    )
    max_query_directives: int = setting(
        "MAX_QUERY_DIRECTIVES",
        50,
        WHOLE,
        "directives per operation, fragments expanded (`QUERY_TOO_COMPLEX`)",
    )
    max_query_tokens: int = setting(
        "MAX_QUERY_TOKENS",
        2000,
        WHOLE,
        "lexical tokens of a document; the parser stops past it (`QUERY_TOO_COMPLEX`)",
        bound=POSITIVE,
    )
    max_query_cost: int = setting(
        "MAX_QUERY_COST",
        1000,
        WHOLE,
        "highest requested cost of one operation (`QUERY_TOO_COMPLEX`)",
        bound=POSITIVE,
    )
    execution_timeout_ms: int = setting(
        "EXECUTION_TIMEOUT_MS",
        10_000,
        WHOLE,
        "longest execution of one operation (`0`: none)",
    )
    graphql_execution: str = setting(
        "GRAPHQL_EXECUTION",
        "compiled",
        choice(GRAPHQL_EXECUTIONS),
        "how queries execute: `compiled` (plans compiled once per document; graphql-core "
        "for mutations, introspection and what is not compiled), `graphql-core`, or "
        "`compare` (both, differences logged: for tests and canaries, twice the work)",
    )
    introspection: bool = setting(
        "INTROSPECTION",
        True,
        FLAG,
        "schema introspection; when off, errors suggest no field names either",
        derive=_unless_production,
        shown_default="`true`, `false` when `ENVIRONMENT=production`",
    )
    graphiql: bool = setting(
        "GRAPHIQL",
        True,
        FLAG,
        'serve GraphiQL (see "GraphiQL"); when off, a browser\'s `GET /graphql` is answered'
        " as any GraphQL GET without a query and `/graphiql/static/*` is `404`",
        derive=_unless_production,
        shown_default="`true`, `false` when `ENVIRONMENT=production`",
    )
    # Rate limiting.
    rate_limit_enabled: bool = setting(
        "RATE_LIMIT_ENABLED", True, FLAG, "charge each operation's cost to its client's bucket"
    )
    rate_limit_maximum: int = setting(
        "RATE_LIMIT_MAXIMUM", 2000, WHOLE, "cost a client's bucket holds", bound=POSITIVE
    )
    rate_limit_restore_rate: float = setting(
        "RATE_LIMIT_RESTORE_RATE", 100.0, NUMBER, "cost restored per second", bound=POSITIVE
    )
    admin_rate_limit_maximum: int = setting(
        "ADMIN_RATE_LIMIT_MAXIMUM", 20_000, WHOLE, "the same for admins", bound=POSITIVE
    )
    admin_rate_limit_restore_rate: float = setting(
        "ADMIN_RATE_LIMIT_RESTORE_RATE", 1000.0, NUMBER, "the same for admins", bound=POSITIVE
    )
    rate_limit_lease_share: float = setting(
        "RATE_LIMIT_LEASE_SHARE",
        0.02,
        NUMBER,
        "with `REDIS_URL`, the share of a bucket's maximum each process leases beyond a"
        " request's cost, so that most requests are charged without a Redis call; a client"
        " may overspend by at most this much per process (`0`: every request asks Redis;"
        ' see "Limits and rate limiting")',
        bound=between(0, 1),
    )
    rate_limit_lease_seconds: float = setting(
        "RATE_LIMIT_LEASE_SECONDS",
        1.0,
        NUMBER,
        "how long a process charges a lease before it asks Redis again, returning what"
        " the lease has left",
        bound=POSITIVE,
    )
    trusted_proxies: tuple[Network, ...] = setting(
        "TRUSTED_PROXIES",
        (),
        NETWORKS,
        "addresses or networks (`10.0.0.0/8`) whose `X-Forwarded-For` is believed",
    )
    # Transport (README: "Persisted queries", "Batching", "GraphQL over HTTP").
    persisted_queries: str = setting(
        "PERSISTED_QUERIES",
        "apq",
        choice(PERSISTED_QUERY_MODES),
        'which documents clients may send (see "Persisted queries")',
    )
    trusted_documents_allow_admin: bool = setting(
        "TRUSTED_DOCUMENTS_ALLOW_ADMIN",
        False,
        FLAG,
        "in `trusted` mode, ADMIN tokens may still send any document (GraphiQL in production)",
    )
    persisted_queries_manifest: str | None = setting(
        "PERSISTED_QUERIES_MANIFEST",
        None,
        text("a path"),
        "a manifest (or folder of `.graphql` files) of trusted documents imported at startup;"
        " an invalid one stops the server",
    )
    apq_ttl_seconds: int = setting(
        "APQ_TTL_SECONDS",
        86_400,
        WHOLE,
        "how long an APQ registration is kept (Redis key TTL; in process too)",
        bound=POSITIVE,
    )
    apq_max_document_bytes: int = setting(
        "APQ_MAX_DOCUMENT_BYTES",
        20 * 1024,
        WHOLE,
        "largest document (UTF-8 bytes) an APQ registration stores; a larger one still runs,"
        " but is not stored",
        bound=POSITIVE,
    )
    apq_registrations_per_client: int = setting(
        "APQ_REGISTRATIONS_PER_CLIENT",
        100,
        WHOLE,
        "new documents one client (its user, else its IP address) may register per window;"
        " beyond it registrations are skipped (`0`: no APQ registration)",
        bound=NON_NEGATIVE,
    )
    apq_registration_window_seconds: int = setting(
        "APQ_REGISTRATION_WINDOW_SECONDS",
        3600,
        WHOLE,
        "the window of `APQ_REGISTRATIONS_PER_CLIENT`",
        bound=POSITIVE,
    )
    apq_memory_entries: int = setting(
        "APQ_MEMORY_ENTRIES",
        10_000,
        WHOLE,
        "APQ entries kept in process without Redis (LRU)",
        bound=POSITIVE,
    )
    apq_memory_bytes: int = setting(
        "APQ_MEMORY_BYTES",
        32 * 1024 * 1024,
        WHOLE,
        "characters of APQ documents kept in process without Redis (LRU)",
        bound=POSITIVE,
    )
    persisted_document_cache_size: int = setting(
        "PERSISTED_DOCUMENT_CACHE_SIZE",
        1000,
        WHOLE,
        "parsed, validated documents kept in process by hash, so a persisted hit skips both",
        bound=POSITIVE,
    )
    max_batch: int = setting(
        "MAX_BATCH",
        10,
        WHOLE,
        "operations in one batch (a JSON array body); more is `413`",
        bound=POSITIVE,
    )
    cors_allowed_origins: tuple[str, ...] = setting(
        "CORS_ALLOWED_ORIGINS",
        (),
        ORIGINS,
        "origins (`https://shop.example`) browsers may call from; none by default",
    )
    # Result cache (README: "Result cache").
    cache_enabled: bool = setting(
        "CACHE_ENABLED",
        True,
        FLAG,
        'the result cache (see "Result cache"): responses and entities, in Redis with'
        " `REDIS_URL`, else in process (and then off with `WEB_CONCURRENCY` above 1)",
    )
    cache_memory_bytes: int = setting(
        "CACHE_MEMORY_BYTES",
        64 * 1024 * 1024,
        WHOLE,
        "bytes the in-process cache may hold (an LRU; without `REDIS_URL` only)",
        bound=POSITIVE,
    )
    cache_near_bytes: int = setting(
        "CACHE_NEAR_BYTES",
        32 * 1024 * 1024,
        WHOLE,
        "bytes of cached answers each process keeps in its own memory in front of Redis"
        ' (the near cache, an LRU; with `REDIS_URL` only; `0`: off; see "Near cache")',
        bound=NON_NEGATIVE,
    )
    hit_path_enabled: bool = setting(
        "HIT_PATH_ENABLED",
        True,
        FLAG,
        "answer a repeated query whose answer is fresh in this process's memory in front of"
        ' the middleware stack, with the same answer (see "The hit path"); `false`: every'
        " request takes the full stack",
    )
    cache_near_heartbeat_ms: int = setting(
        "CACHE_NEAR_HEARTBEAT_MS",
        1000,
        WHOLE,
        "how often each process proves its invalidation subscription alive; the near cache"
        " is bypassed when no proof is younger than twice this",
        bound=POSITIVE,
    )
    cache_redis_timeout_ms: int = setting(
        "CACHE_REDIS_TIMEOUT_MS",
        50,
        WHOLE,
        "longest wait for Redis per cache call; slower or down, requests go to the database"
        " (`X-Cache: BYPASS`)",
        bound=POSITIVE,
        derive=lambda values: values["redis_timeout_ms"],
        shown_default="`REDIS_TIMEOUT_MS`",
    )
    cache_stale_while_revalidate: int = setting(
        "CACHE_STALE_WHILE_REVALIDATE",
        30,
        WHOLE,
        "seconds past its max-age an answer is still served (`X-Cache: STALE`) while one"
        " refresh runs in the background",
        bound=NON_NEGATIVE,
    )
    cache_stale_if_error: int = setting(
        "CACHE_STALE_IF_ERROR",
        300,
        WHOLE,
        "seconds past its max-age an answer stands in for a database failure",
        bound=NON_NEGATIVE,
    )
    cache_lock_wait_ms: int = setting(
        "CACHE_LOCK_WAIT_MS",
        1000,
        WHOLE,
        "how long identical concurrent misses wait for the one run (in process, or in another"
        " instance) before running themselves",
        bound=NON_NEGATIVE,
    )
    cache_entity_ttl: int = setting(
        "CACHE_ENTITY_TTL",
        300,
        WHOLE,
        "seconds the by-id loaders' entities are cached (`0`: no entity cache)",
        bound=NON_NEGATIVE,
    )
    # Compression (README: "Compression"; levels chosen from bench/compression.py).
    compression_enabled: bool = setting(
        "COMPRESSION_ENABLED",
        True,
        FLAG,
        "compress answers with zstd, br or gzip as the client's `Accept-Encoding` prefers"
        " (GraphiQL's assets are served pre-compressed either way)",
    )
    compression_min_bytes: int = setting(
        "COMPRESSION_MIN_BYTES",
        1024,
        WHOLE,
        "smallest body compressed; smaller ones go as they are",
        bound=NON_NEGATIVE,
    )
    compression_zstd_level: int = setting(
        "COMPRESSION_ZSTD_LEVEL",
        3,
        WHOLE,
        "zstd level of answers (higher: fewer bytes, more CPU; the defaults are chosen from"
        ' `bench.compression`, see "Compression")',
        bound=between(1, 22),
    )
    compression_br_level: int = setting(
        "COMPRESSION_BR_LEVEL",
        3,
        WHOLE,
        "brotli quality of answers",
        bound=between(0, 11),
    )
    compression_gzip_level: int = setting(
        "COMPRESSION_GZIP_LEVEL",
        3,
        WHOLE,
        "gzip level of answers",
        bound=between(1, 9),
    )
    # Webhooks and the job queue (README: "Webhooks").
    webhook_secret_key: str | None = setting(
        "WEBHOOK_SECRET_KEY",
        None,
        text("Fernet keys, comma-separated, newest first"),
        "encrypts webhook signing secrets at rest; required to create webhooks and to run"
        ' their deliveries (rotation: see "Webhooks")',
    )
    webhook_queue: str = setting(
        "WEBHOOK_QUEUE",
        "storefront-webhooks",
        text("a name"),
        "the saq queue (Redis keys `saq:<name>:…`) of delivery jobs; deployments sharing a"
        " Redis database need names of their own",
    )
    webhook_allow_http: bool = setting(
        "WEBHOOK_ALLOW_HTTP",
        False,
        FLAG,
        "webhook URLs may use `http://` (else `https://` only)",
    )
    webhook_allow_private: bool = setting(
        "WEBHOOK_ALLOW_PRIVATE",
        False,
        FLAG,
        "webhook hosts may resolve to private, loopback or link-local addresses (SSRF guard off)",
    )
    webhook_retry_base_seconds: float = setting(
        "WEBHOOK_RETRY_BASE_SECONDS",
        30.0,
        NUMBER,
        "the first retry's delay; each further retry doubles it (capped at six hours), with"
        " full jitter",
        bound=POSITIVE,
    )
    webhook_max_attempts: int = setting(
        "WEBHOOK_MAX_ATTEMPTS",
        8,
        WHOLE,
        "attempts of a delivery before it is FAILED",
        bound=POSITIVE,
    )
    webhook_timeout_seconds: float = setting(
        "WEBHOOK_TIMEOUT_SECONDS",
        10.0,
        NUMBER,
        "the time one delivery attempt may take (connect, send, answer)",
        bound=POSITIVE,
    )
    webhook_concurrency: int = setting(
        "WEBHOOK_CONCURRENCY",
        20,
        WHOLE,
        "delivery jobs one `storefront worker` runs at once",
        bound=POSITIVE,
    )
    webhook_sweep_cron: str = setting(
        "WEBHOOK_SWEEP_CRON",
        "* * * * *",
        text("a cron expression (a sixth field is seconds)"),
        "when the worker re-queues PENDING deliveries whose job was lost and prunes the outbox",
    )
    webhook_stuck_seconds: float = setting(
        "WEBHOOK_STUCK_SECONDS",
        120.0,
        NUMBER,
        "a PENDING delivery this long past its `nextAttemptAt` is re-queued by the sweep",
        bound=POSITIVE,
    )
    outbox_retention_days: float = setting(
        "OUTBOX_RETENTION_DAYS",
        7.0,
        NUMBER,
        "published outbox rows older than this are pruned by the worker's sweep",
        bound=POSITIVE,
    )
    extra: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for spec, variable in declared():
            raw = env.get(variable.name)
            if raw:  # unset and empty both mean the default
                values[spec.name] = variable.read.parse(variable.name, raw)
            elif variable.derive is not None:
                values[spec.name] = variable.derive(values)
            else:
                values[spec.name] = spec.default
        # Bounds once every variable has parsed: an unreadable value is reported first.
        for spec, variable in declared():
            if variable.bound is not None:
                variable.bound.check(variable.name, values[spec.name])
        if values["database_replica_urls"] and values["database_url"].startswith("sqlite"):
            raise SettingsError("DATABASE_REPLICA_URLS needs a PostgreSQL DATABASE_URL")
        return cls(**values)

    @property
    def direct_database_url(self) -> str:
        """PostgreSQL past any pooler: DATABASE_DIRECT_URL, else DATABASE_URL."""
        return self.database_direct_url or self.database_url

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def relay_in_server(self) -> bool:
        """Whether `storefront serve` runs the outbox relay itself (EVENTS_RELAY)."""
        if self.events_relay == "auto":
            return not self.redis_url
        return self.events_relay == "server"

    def sqlite_path(self) -> Path | None:
        """The database file of a SQLite URL (None for PostgreSQL or memory)."""
        if not self.is_sqlite:
            return None
        path = self.database_url.split(":///", 1)[1] if ":///" in self.database_url else ""
        return Path(path.split("?", 1)[0]) if path and path != ":memory:" else None


def declared() -> tuple[tuple[Field[Any], Variable], ...]:
    """Every `Settings` field read from the environment, with its variable, in order."""
    return tuple(
        (spec, spec.metadata["variable"])
        for spec in fields(Settings)
        if "variable" in spec.metadata
    )


def announce_workers(workers: int, env: MutableMapping[str, str] | None = None) -> None:
    """Tell the worker processes about to be started (they inherit `env`) how many there are.

    Each worker's caches depend on it (server/cache/caches.py): in-process caches are
    only safe in a process that has no siblings.
    """
    (os.environ if env is None else env)[WORKERS_VARIABLE] = str(workers)
