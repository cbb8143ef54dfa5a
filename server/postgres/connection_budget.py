"""PostgreSQL's connection budget, checked once when a process starts.

Every worker of every instance opens up to `DB_POOL_SIZE + DB_MAX_OVERFLOW`
connections. At startup a process reads the server's `max_connections` and
warns, in one line with the arithmetic, when this host's workers could open
more than `DB_CONNECTION_SHARE` of it (README: "PgBouncer and the connection
budget" gives the formula over instances). Behind PgBouncer
(`DB_POOLER=pgbouncer`) the pools hold client connections of PgBouncer, whose
own pool is what PostgreSQL sees, so nothing is checked. A database that does
not answer within READINESS_TIMEOUT_MS is not waited for: the probes report it.

Example:
    budget = await check_connection_budget(engine, settings)  # warns when exceeded
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from server.settings import Settings

logger = logging.getLogger("storefront.database")


@dataclass(frozen=True, slots=True)
class ConnectionBudget:
    """This host's workers' connections against their share of `max_connections`."""

    pool_size: int
    max_overflow: int
    workers: int
    max_connections: int
    share: float

    @property
    def wanted(self) -> int:
        return (self.pool_size + self.max_overflow) * self.workers

    @property
    def allowed(self) -> int:
        return math.floor(self.share * self.max_connections)

    @property
    def exceeded(self) -> bool:
        return self.wanted > self.allowed

    def describe(self) -> str:
        return (
            f"connection budget exceeded: (DB_POOL_SIZE {self.pool_size} + DB_MAX_OVERFLOW"
            f" {self.max_overflow}) x {self.workers} workers = {self.wanted} connections, over"
            f" DB_CONNECTION_SHARE {self.share:g} x max_connections {self.max_connections}"
            f" = {self.allowed}: lower the pool, or put PgBouncer in front (DB_POOLER=pgbouncer)"
        )


async def check_connection_budget(
    engine: AsyncEngine, settings: Settings
) -> ConnectionBudget | None:
    """The budget of this host, logged as a warning when exceeded; None when not checked
    (SQLite, behind a pooler, or the database did not answer in time)."""
    if settings.is_sqlite or settings.db_pooler != "none":
        return None
    try:
        async with asyncio.timeout(settings.readiness_timeout_ms / 1000):
            async with engine.connect() as connection:
                found = await connection.exec_driver_sql("SHOW max_connections")
                max_connections = int(found.scalar_one())
    except Exception as error:  # the probes say when the database is down
        logger.debug("connection budget not checked: %s", error)
        return None
    budget = ConnectionBudget(
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        workers=settings.workers,
        max_connections=max_connections,
        share=settings.db_connection_share,
    )
    if budget.exceeded:
        logger.warning(budget.describe())
    return budget
