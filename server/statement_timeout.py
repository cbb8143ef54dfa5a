"""PostgreSQL's `statement_timeout` on the server's engine (DB_STATEMENT_TIMEOUT_MS).

Directly connected, it is a startup parameter of each connection: it holds for
the whole session and a pool reset cannot roll it back. PgBouncer in
transaction mode refuses startup parameters it does not know and hands each
transaction to any server connection, so there (`per_transaction`) every
transaction starts with `SET LOCAL statement_timeout`, which ends with it. A
statement it cancels fails with SQLSTATE 57014 either way, which the API
answers as QUERY_TIMEOUT (schema/errors.py).

Only the server's engine is limited: migrations and seeding run long
statements on purpose.

Example:
    limit_statements(engine, 5000, per_transaction=settings.db_pooler == "pgbouncer")
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import await_only


def limit_statements(engine: AsyncEngine, timeout_ms: int, *, per_transaction: bool) -> None:
    """PostgreSQL cancels any statement of `engine` running over `timeout_ms`."""
    if per_transaction:
        _per_transaction(engine, int(timeout_ms))
        return

    def connect_args(_dialect: Any, _record: Any, _cargs: Any, cparams: dict[str, Any]) -> None:
        server_settings = cparams.setdefault("server_settings", {})
        server_settings["statement_timeout"] = str(timeout_ms)

    event.listen(engine.sync_engine, "do_connect", connect_args)


def _per_transaction(engine: AsyncEngine, timeout_ms: int) -> None:
    statement = f"SET LOCAL statement_timeout = {timeout_ms}"

    def begin(connection: Connection) -> None:
        # SQLAlchemy's asyncpg adapter sends BEGIN lazily, with the first statement
        # it executes; the lean reads (loaders/prepared.py) bypass it. So BEGIN is
        # sent here, then the SET, as one simple query each (no prepared statement,
        # and neither is counted as one of the request's statements).
        adapted: Any = connection.connection.dbapi_connection
        if adapted is None or adapted.autocommit:
            return  # no transaction: nothing to scope a SET LOCAL to
        try:
            await_only(adapted._start_transaction())
            await_only(adapted.driver_connection.execute(statement))
        except Exception as error:
            _raise_as_sqlalchemy(connection, adapted, error, statement)

    event.listen(engine.sync_engine, "begin", begin)


def _raise_as_sqlalchemy(connection: Connection, adapted: Any, error: Exception, sql: str) -> None:
    """`error` as SQLAlchemy's execution raises it: the adapter's DBAPI error, wrapped
    (DBAPIError) and the connection invalidated when it is broken."""
    try:
        adapted._handle_exception(error)  # raises the translated error (or `error`)
    except Exception as translated:
        connection._handle_dbapi_exception(translated, sql, (), None, None)
    raise error  # pragma: no cover
