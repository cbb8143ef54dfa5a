"""In-process fan-out of committed changes to whoever must react (caches, tests)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from resolvers.changes import Changes

logger = logging.getLogger("storefront.changes")

Subscriber = Callable[[Changes], Awaitable[None]]


class ChangeFeed:
    """Implements schema.changes.ChangePublisher: calls every subscriber in order.

    A failing subscriber is logged and does not stop the others: the write has
    already committed, so the client must still get its answer.
    """

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Adds `subscriber`; returns a function that removes it."""
        self._subscribers.append(subscriber)
        return lambda: self._subscribers.remove(subscriber)

    async def publish(self, changes: Changes) -> None:
        if not changes:
            return
        for subscriber in list(self._subscribers):
            try:
                await subscriber(changes)
            except Exception:
                logger.exception("change subscriber failed for %s", sorted(changes.tags))
