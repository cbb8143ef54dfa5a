"""The relay loop: drain the outbox, then sleep until woken (a commit's NOTIFY on
PostgreSQL, this process's own publish in the server) or `poll_interval` passes.

Errors (database or Redis down) are logged once per outage and retried with a
backoff up to `poll_interval`; the rows stay in the outbox meanwhile, so an
outage only delays events. `stop` ends the loop between passes: a pass in
progress completes (or rolls back) first.

Example:
    loop = RelayLoop(relay, poll_interval=0.5, listen_url=settings.direct_database_url)
    task = asyncio.create_task(loop.run())
    ...
    loop.stop(); await task
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from server.events.notifications import OutboxNotifications
from server.events.relay import Relay

logger = logging.getLogger("storefront.events")

FIRST_BACKOFF = 0.05


class RelayLoop:
    def __init__(
        self, relay: Relay, *, poll_interval: float, listen_url: str | None = None
    ) -> None:
        self.relay = relay
        self.poll_interval = poll_interval
        self._woken = asyncio.Event()
        self._stopping = asyncio.Event()
        self._notifications = (
            OutboxNotifications(listen_url, self.wake)
            if listen_url is not None and listen_url.startswith("postgresql")
            else None
        )
        self.passes = 0

    def wake(self) -> None:
        self._woken.set()

    def stop(self) -> None:
        self._stopping.set()
        self._woken.set()

    async def run(self) -> None:
        backoff = FIRST_BACKOFF
        failing = False
        try:
            while not self._stopping.is_set():
                if self._notifications is not None:
                    await self._notifications.ensure()
                self._woken.clear()
                try:
                    await self.relay.drain()
                except Exception as failure:
                    if not failing:
                        logger.warning("events: relaying failed (%s); retrying", failure)
                    logger.debug("events: relay pass failed", exc_info=True)
                    failing = True
                    await self._sleep(backoff, wakeable=False)
                    backoff = min(backoff * 2, self.poll_interval)
                    continue
                if failing:
                    logger.info("events: relaying again")
                failing, backoff = False, FIRST_BACKOFF
                self.passes += 1
                await self._sleep(self.poll_interval)
        finally:
            if self._notifications is not None:
                await self._notifications.close()

    async def _sleep(self, seconds: float, *, wakeable: bool = True) -> None:
        """Until woken (if `wakeable`), stopped, or `seconds` have passed."""
        if self._stopping.is_set():  # stopped while it relayed (its wake-up was cleared)
            return
        until = self._woken if wakeable else self._stopping
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(until.wait(), timeout=seconds)
