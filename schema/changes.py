"""The seam through which committed writes announce their changes."""

from __future__ import annotations

from typing import Protocol

from resolvers.changes import Changes


class ChangePublisher(Protocol):
    """Receives the changes of every committed write (caches invalidate from them)."""

    async def publish(self, changes: Changes) -> None: ...
