"""In-process fan-out of committed events to whoever must react (caches, the in-server
relay, tests).

Events reach it two ways: `publish`, right after this process's own commit (its
caches are invalidated before the answer is sent), and `apply`, from the relay
(server/events/: the Redis channel, or the in-server relay without Redis). Both
hand subscribers the `Changes` the events' tags name (one event vocabulary:
resolvers/events.py). `apply` is idempotent by event id: an event this process
already published or applied is skipped (the relay delivers at least once, and
also relays what this process wrote itself).

Fault injection (tests only): with `kill_after_commit`, `publish` SIGKILLs its own
process before anything is announced, the moment between a commit and its
in-process publish (FAULT_KILL_AFTER_COMMIT).
"""

from __future__ import annotations

import logging
import os
import signal
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence

from resolvers.changes import Changes
from resolvers.events import Event, changes_of

logger = logging.getLogger("storefront.changes")

Subscriber = Callable[[Changes], Awaitable[None]]

# Event ids remembered as applied: far more than arrive while one is in flight.
REMEMBERED = 50_000


class ChangeFeed:
    """Implements schema.changes.ChangePublisher: calls every subscriber in order.

    A failing subscriber is logged and does not stop the others: the write has
    already committed, so the client must still get its answer.
    """

    def __init__(self, *, kill_after_commit: bool = False, remembered: int = REMEMBERED) -> None:
        self._subscribers: list[Subscriber] = []
        self._watchers: list[Callable[[], None]] = []
        self._applied: OrderedDict[str, None] = OrderedDict()
        self._remembered = remembered
        self._kill_after_commit = kill_after_commit

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Adds `subscriber`; returns a function that removes it."""
        self._subscribers.append(subscriber)
        return lambda: self._subscribers.remove(subscriber)

    def watch(self, watcher: Callable[[], None]) -> Callable[[], None]:
        """Calls `watcher` after each local publish (it wakes the in-server relay)."""
        self._watchers.append(watcher)
        return lambda: self._watchers.remove(watcher)

    async def publish(self, events: Sequence[Event]) -> None:
        """The events of a write this process just committed."""
        if self._kill_after_commit and events:
            os.kill(os.getpid(), signal.SIGKILL)
        self._remember(events)
        await self._announce(events)
        for watcher in list(self._watchers):
            watcher()

    async def apply(self, events: Sequence[Event]) -> None:
        """Relayed events: those not applied here yet."""
        fresh = [event for event in events if event.event_id not in self._applied]
        self._remember(fresh)
        await self._announce(fresh)

    def _remember(self, events: Sequence[Event]) -> None:
        for event in events:
            self._applied[event.event_id] = None
        while len(self._applied) > self._remembered:
            self._applied.popitem(last=False)

    async def _announce(self, events: Sequence[Event]) -> None:
        changes = changes_of(events)
        if not changes:
            return
        for subscriber in list(self._subscribers):
            try:
                await subscriber(changes)
            except Exception:
                logger.exception("change subscriber failed for %s", sorted(changes.tags))
