"""Whether this process should get traffic: database, migrations, Redis and shutdown.

One readiness check costs one database round trip (the applied revisions, read
on an autocommit connection: no BEGIN, no ROLLBACK; a cached prepared
statement) and, with REDIS_URL, one PING, both at once and both bounded by
READINESS_TIMEOUT_MS. The migration scripts' head is read from disk once per
process. A failing check is logged once, as one line, when the state changes
(and its recovery once): a probe every few seconds must not flood the log;
LOG_LEVEL=debug adds each failure's traceback.

Example:
    readiness = Readiness(timeout=1.0)
    checks = await readiness.checks(engine=services.engine, redis=services.redis)
    # {"database": "up", "migrations": "head", "redis": "up"}
"""

from __future__ import annotations

import asyncio
import logging

from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

logger = logging.getLogger("storefront.readiness")

# Every check's value when it passes; anything else fails readiness.
PASSING = {"database": "up", "migrations": "head", "redis": "up"}
APPLIED_REVISIONS = text("SELECT version_num FROM alembic_version")


def is_ready(checks: dict[str, str]) -> bool:
    return all(PASSING.get(name) == value for name, value in checks.items())


class Readiness:
    """The readiness checks of one process, with the head revision cached."""

    def __init__(self, *, timeout: float) -> None:
        self._timeout = timeout
        self._heads: frozenset[str] | None = None
        self._known: frozenset[str] = frozenset()
        self._failing: dict[str, str] | None = None  # the last failing state logged
        self._asking: asyncio.Task[frozenset[str]] | None = None

    async def checks(self, *, engine: AsyncEngine, redis: Redis | None) -> dict[str, str]:
        """Each check named with its state, e.g. {"database": "up", "migrations": "behind"}."""
        reasons: dict[str, str] = {}
        database = self._database(engine, reasons)
        if redis is None:
            (database_state, migrations) = await database
            checks = {"database": database_state, "migrations": migrations}
        else:
            (database_state, migrations), redis_state = await asyncio.gather(
                database, self._redis(redis, reasons)
            )
            checks = {"database": database_state, "migrations": migrations, "redis": redis_state}
        self._log_change(checks, reasons)
        return checks

    async def _database(self, engine: AsyncEngine, reasons: dict[str, str]) -> tuple[str, str]:
        """("up", migration state), or ("down", "unknown") when no answer came in time."""
        # One question at a time, awaited but never cancelled by a probe: on a late
        # answer SQLAlchemy drops the connection, which itself waits (up to 2 s) for
        # the database, so the question ends in the background while the probe answers.
        if self._asking is None or self._asking.done():
            self._asking = asyncio.create_task(self._applied_revisions(engine))
            self._asking.add_done_callback(_retrieve)
        try:
            async with asyncio.timeout(self._timeout):
                applied = await asyncio.shield(self._asking)
        except Exception as error:
            reasons["database"] = _reason(error)
            logger.debug("readiness: database check failed", exc_info=True)  # LOG_LEVEL=debug
            return "down", "unknown"
        return "up", await self._migrations(applied)

    async def _applied_revisions(self, engine: AsyncEngine) -> frozenset[str]:
        async with asyncio.timeout(self._timeout):
            connection = await engine.connect()
            try:
                # No transaction: one round trip, and nothing to roll back on return.
                await connection.execution_options(isolation_level="AUTOCOMMIT")
                result = await connection.execute(APPLIED_REVISIONS)
                return frozenset(str(row) for row in result.scalars())
            except Exception as error:  # answered, but has no revision table
                if not _answered(error):
                    raise
                return frozenset()
            finally:
                await connection.close()

    async def _migrations(self, applied: frozenset[str]) -> str:
        """`head`, `behind` (older or never migrated), or `unknown` (a revision this
        release does not know, e.g. a newer release's)."""
        if self._heads is None:
            self._heads, self._known = await asyncio.to_thread(_script_revisions)
        if applied == self._heads:
            return "head"
        if applied <= self._known:
            return "behind"
        return "unknown"

    async def _redis(self, redis: Redis, reasons: dict[str, str]) -> str:
        try:
            async with asyncio.timeout(self._timeout):
                await redis.ping()
        except Exception as error:
            reasons["redis"] = _reason(error)
            logger.debug("readiness: Redis check failed", exc_info=True)
            return "down"
        return "up"

    def _log_change(self, checks: dict[str, str], reasons: dict[str, str]) -> None:
        failing = {name: value for name, value in checks.items() if PASSING.get(name) != value}
        if failing == (self._failing or {}):
            return
        if failing:
            detail = ", ".join(
                f"{name} {value}" + (f" ({reasons[name]})" if name in reasons else "")
                for name, value in failing.items()
            )
            logger.warning("not ready: %s", detail)
        else:
            logger.info("ready again: %s", ", ".join(f"{k} {v}" for k, v in checks.items()))
        self._failing = failing or None


def _retrieve(task: asyncio.Task[frozenset[str]]) -> None:
    """Marks a question's failure seen: the probe that asked may have stopped waiting."""
    if not task.cancelled():
        task.exception()


def _answered(error: Exception) -> bool:
    """Whether the database itself refused the statement (e.g. no such table), as
    opposed to a lost connection or a timeout."""
    from sqlalchemy.exc import DBAPIError

    return isinstance(error, DBAPIError) and not error.connection_invalidated


def _reason(error: BaseException) -> str:
    """One short line about `error`, without its traceback."""
    if isinstance(error, TimeoutError):
        return "no answer in time (READINESS_TIMEOUT_MS)"
    message = str(getattr(error, "orig", None) or error).strip().splitlines()
    return f"{type(error).__name__}: {message[0] if message else ''}".rstrip(": ")


def _script_revisions() -> tuple[frozenset[str], frozenset[str]]:
    """The heads of this release's migration scripts, and every revision they know."""
    from alembic.script import ScriptDirectory

    from server.cli.migrate import SCRIPT_LOCATION

    scripts = ScriptDirectory(str(SCRIPT_LOCATION))
    known = frozenset(script.revision for script in scripts.walk_revisions())
    return frozenset(scripts.get_heads()), known
