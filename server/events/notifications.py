"""PostgreSQL LISTEN for the outbox: a relay wakes the moment a write commits.

The migration's trigger on `outbox_events` runs `pg_notify('storefront_outbox', '')`
in the inserting transaction, so the notification is delivered at its commit (and
never for a rollback). A lost connection is noticed at the next `ensure` and made
again; meanwhile the relay's polling carries on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

logger = logging.getLogger("storefront.events")

CHANNEL = "storefront_outbox"


class OutboxNotifications:
    def __init__(self, engine: AsyncEngine, wake: Callable[[], None]) -> None:
        self._engine = engine
        self._wake = wake
        self._connection: AsyncConnection | None = None
        self._driver: Any = None

    @property
    def listening(self) -> bool:
        return self._driver is not None and not self._driver.is_closed()

    async def ensure(self) -> None:
        """Listens, unless it already does; a failure is logged (polling goes on)."""
        if self.listening:
            return
        await self.close()
        try:
            self._connection = await self._engine.connect()
            raw = await self._connection.get_raw_connection()
            self._driver = raw.driver_connection
            await self._driver.add_listener(CHANNEL, self._notified)
        except Exception as failure:
            logger.warning("events: cannot LISTEN (%s); polling only", failure)
            await self.close()
            return
        self._wake()  # what committed while it was not listening

    async def close(self) -> None:
        connection, self._connection, self._driver = self._connection, None, None
        if connection is not None:
            try:
                await connection.invalidate()
                await connection.close()
            except Exception:  # a dead connection: nothing left to release
                logger.debug("events: closing the LISTEN connection failed", exc_info=True)

    def _notified(self, *_: Any) -> None:
        self._wake()
