"""The engine and session factory: one per process, built in the lifespan.

Behind PgBouncer in transaction mode (`DB_POOLER=pgbouncer`) consecutive
transactions of one pooled connection may run on different server
connections, so nothing may outlive a transaction: asyncpg's statement cache
is off and every statement is prepared unnamed (asyncpg sends its Parse,
Describe, Bind and Execute before one Sync, so they reach one server
connection), and statement timeouts are set per transaction
(server/statement_timeout.py), for which reads then run in transactions too.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from loaders.batch import READ_TRANSACTIONS
from server.observability.sql_count import count_statements
from server.settings import Settings


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run beside a writer; without busy_timeout a concurrent
    # writer fails at once with "database is locked".
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def create_engine(settings: Settings) -> AsyncEngine:
    """An engine for `settings.database_url`: pooled asyncpg, or a SQLite file in WAL mode."""
    if settings.is_sqlite:
        path = settings.sqlite_path()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(settings.database_url, echo=settings.db_echo)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        count_statements(engine)
        return engine
    engine = create_async_engine(
        settings.database_url,
        echo=settings.db_echo,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        pool_recycle=settings.db_pool_recycle,
        pool_pre_ping=settings.db_pool_pre_ping,
        **pooler_options(settings),
    )
    count_statements(engine)  # per request, for its log line
    return engine


def pooler_options(settings: Settings) -> dict[str, Any]:
    """`create_async_engine` options for what `DATABASE_URL` reaches (`DB_POOLER`)."""
    if settings.db_pooler != "pgbouncer":
        return {}
    return {
        "connect_args": {
            "statement_cache_size": 0,  # asyncpg's own cache (the lean reads' path)
            "prepared_statement_cache_size": 0,  # SQLAlchemy's adapter's cache
            # Unnamed (""): a named statement would stay behind on whichever server
            # connection parsed it, its Close sent later, maybe through another one.
            "prepared_statement_name_func": _unnamed,
        },
        # SET LOCAL statement_timeout needs a transaction: reads get one too.
        "execution_options": {READ_TRANSACTIONS: settings.db_statement_timeout_ms > 0},
    }


def _unnamed() -> str:
    return ""


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
