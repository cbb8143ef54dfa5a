"""Reads on PostgreSQL through asyncpg's prepared statements, past SQLAlchemy's result layer.

SQLAlchemy Core still builds every statement, and the connection still comes
from its pool through the batch's session. What is skipped is the per-statement
execution machinery (execution context, adapted cursor, greenlet hop, Row
objects and their processors): the statement is compiled once to asyncpg's
`$n` text, and `asyncpg.Connection.fetch` runs it through asyncpg's own
statement cache and hands back `Record`s, read by index like rows. Loaders keep
one SQL text per statement shape (`= ANY($1::BIGINT[])`, never an expanding
IN), so after the first batch on a connection every fetch is one Bind/Execute
round trip on an already prepared statement.

What SQLAlchemy did around a statement is kept: the engine's
`before_cursor_execute` / `after_cursor_execute` events fire with the same SQL
text (statement counts, metrics, trace spans and tests' recorders see every
statement), and a failure goes through the connection's own error handling
(`handle_error` events, DBAPIError wrapping, invalidation of a broken or
interrupted connection), so callers see the exceptions they saw before.

Only result processing is given up, so it must be a no-op for what the loaders
read: asyncpg already decodes ints, text, booleans and aware `timestamptz`
datetimes as SQLAlchemy's types hand them out (tests/loaders/test_prepared.py
compares both paths on seeded data). Bind processors still run.

PgBouncer in transaction mode (DB_POOLER=pgbouncer, server/database.py): a
named statement cached on one server connection is unknown to the next
transaction's ("prepared statement does not exist"), so there the engine turns
asyncpg's cache off (`statement_cache_size=0`): `fetch` then prepares an
unnamed statement each time, its Parse, Describe, Bind and Execute sent before
one Sync, so all of them reach the same server connection. That costs a round
trip per fetch (bench/pgbouncer.py measures it).

Example:
    async with read_connection(sessionmaker) as connection:
        rows = await fetch(connection, statement, {"keys": [1, 2]})
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from sqlalchemy import Connection, Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from loaders.sql import Statement

LEAN_READS = "storefront_lean_reads"
"""Execution option: `False` on an engine (or connection) sends its reads through
SQLAlchemy's own execution even on asyncpg (tests compare the two paths)."""


@dataclass(frozen=True, slots=True)
class Compiled:
    """A statement's asyncpg text and how to turn named parameters into its `$n` arguments."""

    sql: str
    names: tuple[str, ...]
    defaults: Mapping[str, Any]
    processors: tuple[Callable[[Any], Any] | None, ...]

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        values = []
        for name, process in zip(self.names, self.processors, strict=True):
            value = params[name] if name in params else self.defaults[name]
            values.append(value if process is None else process(value))
        return values


# Keyed by id(): statements are built once per shape and cached by their loaders,
# so this holds a bounded set; each entry keeps its statement alive, so no id is reused.
_compiled: dict[tuple[int, str], tuple[Statement, Compiled]] = {}


def compiled(statement: Statement, dialect: Dialect) -> Compiled:
    """`statement` compiled for `dialect`, once per process."""
    key = (id(statement), dialect.name)
    entry = _compiled.get(key)
    if entry is not None:
        return entry[1]
    compiled = statement.compile(dialect=dialect)
    if compiled.literal_execute_params or compiled.post_compile_params:
        # An expanding IN renders a text per list length: no one-text statement cache.
        raise ValueError(f"statement renders per call, not cacheable: {compiled}")
    names = tuple(compiled.positiontup or ())
    binds = {name: bind for bind, name in compiled.bind_names.items()}
    result = Compiled(
        sql=compiled.string,
        names=names,
        defaults={name: binds[name].effective_value for name in names if not binds[name].required},
        processors=tuple(
            binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
        ),
    )
    _compiled[key] = (statement, result)
    return result


def uses_lean_reads(connection: AsyncConnection) -> bool:
    """Whether reads on `connection` go through `fetch` (asyncpg, not switched off)."""
    sync = connection.sync_connection
    return (
        connection.dialect.driver == "asyncpg"
        and sync is not None
        and sync.get_execution_options().get(LEAN_READS, True)
    )


def engine_uses_lean_reads(engine: AsyncEngine) -> bool:
    """Whether reads on `engine`'s connections go through `fetch`, unless a connection
    switches them off itself."""
    return engine.dialect.driver == "asyncpg" and engine.get_execution_options().get(
        LEAN_READS, True
    )


class _StatementContext:
    """Stands in for SQLAlchemy's execution context in the events of one statement:
    listeners keep per-statement state on it (a trace span, a start time)."""

    executemany = False

    def handle_dbapi_exception(self, _error: BaseException) -> None:
        pass


async def fetch(
    connection: AsyncConnection, statement: Statement, params: Mapping[str, Any]
) -> Sequence[Any]:
    """The rows of `statement` with `params`, as asyncpg Records, on an asyncpg connection."""
    query = compiled(statement, connection.dialect)
    sync = connection.sync_connection
    assert sync is not None
    sql, arguments = query.sql, query.arguments(params)
    context = _StatementContext()
    dispatch = sync.dispatch
    for listen in dispatch.before_cursor_execute:
        sql, arguments = listen(sync, None, sql, arguments, context, False)
    # The batch's session checked the connection out just now: reading it needs no
    # greenlet hop (`get_raw_connection()` is one) unless it was invalidated since.
    pooled = sync.connection if not sync.invalidated else await connection.get_raw_connection()
    driver = pooled.driver_connection  # the asyncpg.Connection
    assert driver is not None
    try:
        records: Sequence[Any] = await driver.fetch(sql, *arguments)
    except BaseException as error:
        _raise_as_sqlalchemy(sync, pooled.dbapi_connection, error, sql, arguments, context)
    dispatch.after_cursor_execute(sync, None, sql, arguments, context, False)
    return records


def _raise_as_sqlalchemy(
    sync: Connection,
    adapted: Any,
    error: BaseException,
    sql: str,
    arguments: list[Any],
    context: _StatementContext,
) -> NoReturn:
    """Raises `error` as SQLAlchemy's own execution would have: translated to the DBAPI
    error its asyncpg adapter makes of it, then through the connection's handling
    (DBAPIError wrapping, `handle_error` events, invalidation of a connection that
    is broken or was interrupted mid-statement, e.g. by a cancellation)."""
    try:
        adapted._handle_exception(error)  # always raises: the translated error, or `error`
    except BaseException as translated:
        sync._handle_dbapi_exception(translated, sql, arguments, None, context)  # type: ignore[arg-type]
    raise AssertionError("unreachable")  # pragma: no cover
