"""A DataLoader that gives each caller a future of its own.

aiodataloader hands every caller of a key the same future. When one field fails,
graphql-core cancels the sibling tasks still running, and a cancelled task cancels
the future it awaits: a shared future would then be cancelled for every other
field of the request waiting on the same key, and `CancelledError` (a
BaseException) would escape execution as a bare 500. Here each caller awaits a
future that mirrors the shared one, so cancelling it concerns that caller alone.
Should the shared future itself end cancelled (the batch was cancelled, not the
caller), callers get `LoadCancelled`, an ordinary exception: a field error.

Example:
    loader = IsolatedDataLoader(batch_fn)
    first, second = loader.load(1), loader.load(1)  # one key in the batch, two futures
"""

from __future__ import annotations

from asyncio import Future
from functools import partial
from typing import TypeVar

from aiodataloader import DataLoader

K = TypeVar("K")
V = TypeVar("V")


class LoadCancelled(Exception):
    """The batch that was loading a key was cancelled before it answered."""


class IsolatedDataLoader(DataLoader[K, V]):
    def load(self, key: K) -> Future[V]:
        shared = super().load(key)
        if shared.done():
            return shared  # awaiting a done future never cancels it
        own: Future[V] = self.loop.create_future()
        shared.add_done_callback(partial(_mirror, own))
        return own


def _mirror(own: Future[V], shared: Future[V]) -> None:
    if shared.cancelled():
        if not own.done():
            own.set_exception(LoadCancelled("The load was cancelled before it answered."))
        return
    # Read the outcome even when the caller has gone, so asyncio never reports an
    # exception that was "never retrieved".
    error = shared.exception()
    if own.done():
        return
    if error is not None:
        own.set_exception(error)
    else:
        own.set_result(shared.result())
