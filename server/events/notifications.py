"""PostgreSQL LISTEN for the outbox: a relay wakes the moment a write commits.

The migration's trigger on `outbox_events` runs `pg_notify('storefront_outbox', '')`
in the inserting transaction, so the notification is delivered at its commit (and
never for a rollback). A lost connection is noticed at the next `ensure` and made
again; meanwhile the relay's polling carries on.

LISTEN needs a session of its own, which a PgBouncer in transaction mode cannot give:
the connection is made with asyncpg to `DATABASE_DIRECT_URL` (PostgreSQL itself; the
same as DATABASE_URL when no pooler is set), outside any pool.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

logger = logging.getLogger("storefront.events")

CHANNEL = "storefront_outbox"


class OutboxNotifications:
    def __init__(self, url: str, wake: Callable[[], None]) -> None:
        # asyncpg takes the plain libpq form, without SQLAlchemy's "+asyncpg".
        self._dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        self._wake = wake
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
            self._driver = await asyncpg.connect(self._dsn, timeout=5, statement_cache_size=0)
            await self._driver.add_listener(CHANNEL, self._notified)
        except Exception as failure:
            logger.warning("events: cannot LISTEN (%s); polling only", failure)
            await self.close()
            return
        self._wake()  # what committed while it was not listening

    async def close(self) -> None:
        driver, self._driver = self._driver, None
        if driver is not None:
            try:
                await driver.close(timeout=2)
            except Exception:  # a dead connection: nothing left to release
                logger.debug("events: closing the LISTEN connection failed", exc_info=True)

    def _notified(self, *_: Any) -> None:
        self._wake()
