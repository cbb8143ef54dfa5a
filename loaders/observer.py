"""How the process edge watches loader batches, without the loaders knowing who watches.

Metrics count each batch's keys and statements per loader; tracing opens a span
per batch. Both live in server/, above this layer, so the loaders only offer a
seam: a `BatchObserver` handed to `Loaders`, told of every batch as it runs,
and `current_loader`, the name of the batch running in this context (the
statements a batch sends run inside it, so a SQLAlchemy event can read it).

Example:
    class Printing:
        @contextmanager
        def batch(self, loader: str, keys: int) -> Iterator[None]:
            print(loader, keys)
            yield

    loaders = Loaders(sessionmaker=..., dialect=..., observer=Printing())
"""

from __future__ import annotations

import contextvars
from contextlib import AbstractContextManager
from typing import Protocol

# What a statement sent outside any loader batch is counted as (root listings,
# authentication); the process edge sets "mutation" around a write's resolvers.
OUTSIDE_LOADERS = "other"

_current: contextvars.ContextVar[str] = contextvars.ContextVar(
    "storefront_loader", default=OUTSIDE_LOADERS
)


class BatchObserver(Protocol):
    def batch(self, loader: str, keys: int) -> AbstractContextManager[None]:
        """Entered around one batch of `loader` with `keys` keys (after deduplication)."""
        ...


def current_loader() -> str:
    """The loader whose batch runs in this context, else `OUTSIDE_LOADERS` (or what
    `run_as` set)."""
    return _current.get()


def run_as(name: str) -> contextvars.Token[str]:
    """Attributes what runs next in this context to `name` (e.g. "mutation");
    undo with `reset(token)`."""
    return _current.set(name)


def reset(token: contextvars.Token[str]) -> None:
    _current.reset(token)
