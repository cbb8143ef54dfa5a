"""Several watchers of the loaders' batches behind the one `BatchObserver` a `Loaders` takes.

Metrics and tracing both watch batches; `Services.batch_observer` holds
`combine(...)` of them: None when nobody watches (the loaders then skip the
seam entirely), the observer itself when one does, and a fan-out otherwise.

Example:
    observer = combine(metrics_observer, None if tracing is None else LoaderSpans(tracer))
    Loaders(sessionmaker=..., dialect=..., observer=observer)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

from loaders.observer import BatchObserver


class BatchObservers:
    """Tells each observer of every batch, the first one outermost."""

    def __init__(self, observers: Sequence[BatchObserver]) -> None:
        self.observers = tuple(observers)

    @contextlib.contextmanager
    def batch(self, loader: str, keys: int) -> Iterator[None]:
        with contextlib.ExitStack() as stack:
            for observer in self.observers:
                stack.enter_context(observer.batch(loader, keys))
            yield


def combine(*observers: BatchObserver | None) -> BatchObserver | None:
    """One observer for all of `observers` that are not None; None if none is."""
    present = [observer for observer in observers if observer is not None]
    if not present:
        return None
    if len(present) == 1:
        return present[0]
    return BatchObservers(present)
