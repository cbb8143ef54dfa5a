"""The seam between the by-id loaders and an entity cache shared beyond the request.

The loaders know only this Protocol; `server/cache/entity_cache.py` implements it
over the result-cache store (in process or Redis), invalidated by the same
change announcements as the response cache.

Example:
    loaders = Loaders(sessionmaker=sessionmaker, dialect="sqlite", entity_cache=cache)
    await loaders.product_by_id.load_many([1, 2])  # cached ones first, one query for the rest
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from loaders.tags import Tagged

R = TypeVar("R", bound=Tagged)


class EntityCache(Protocol):
    async def load(
        self,
        ids: list[int],
        record: type[R],
        fetch: Callable[[list[int]], Awaitable[list[R | None]]],
    ) -> list[R | None]:
        """The `record` of each id, in order (None for a missing one): cached ones from
        the cache (under their `Type:id` tags), the others from one call of `fetch`
        with only those ids."""
        ...
