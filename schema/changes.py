"""The seam through which committed writes announce their events."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from resolvers.events import Event


class ChangePublisher(Protocol):
    """Receives the events of every committed write, right after its commit (caches
    invalidate from their tags). They are in the outbox too: the relay publishes them
    again, to every process, whatever becomes of this one."""

    async def publish(self, events: Sequence[Event]) -> None: ...
