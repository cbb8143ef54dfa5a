"""A DataLoader whose futures cannot be cancelled by one of the callers sharing them.

aiodataloader hands every caller of a key the same future. When one field fails,
graphql-core cancels the sibling tasks still running, and a cancelled task
cancels the future it awaits: a shared future would then be cancelled for every
other field of the request waiting on the same key, and `CancelledError` (a
BaseException) would escape execution as a bare 500. Here the shared future
refuses `cancel()`: the cancelled caller's task is still cancelled (asyncio
delivers it as soon as the future completes), the other callers get their value.

Cheaper than a future of its own per caller, mirrored by a callback: the
dashboard makes hundreds of loads per request, and each callback is one more
turn of the event loop (measured: +10% CPU per request).

A batch starts with fewer tasks than aiodataloader's: its own dispatch schedules
a task that only starts the batch's task; here two callbacks (the same batching
window: the queue is taken two turns after its first load) start the batch's task.
A caller that knows every key of a level (the compiled executor) queues them with
`queue` and runs the batch itself, in its own task: no callback and no task at all.

Example:
    loader = IsolatedDataLoader(batch_fn)
    first, second = loader.load(1), loader.load(1)  # one key in the batch, one future
    pending, batch = loader.queue([2, 3])
    if batch is not None:
        await batch  # the statement for 2 and 3, run in this task
"""

from __future__ import annotations

from asyncio import Future
from collections.abc import Coroutine, Iterable
from typing import Any, TypeVar

from aiodataloader import DataLoader, Loader, dispatch_queue_batch

K = TypeVar("K")
V = TypeVar("V")


class SharedFuture(Future[V]):
    """A load's future, shared by every caller of its key: none of them may cancel it.
    (No `__init__` of its own: hundreds are made per request, in C this way.)"""

    def cancel(self, msg: Any | None = None) -> bool:
        return False


class IsolatedDataLoader(DataLoader[K, V]):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The dispatch below always batches, in one batch: aiodataloader's switches
        # for anything else are not carried over.
        if not self.batch or self.max_batch_size:
            raise ValueError("IsolatedDataLoader always batches, in one batch")
        self._custom_cache_key = (
            kwargs.get("get_cache_key") is not None
            or len(args) > 4
            or getattr(type(self), "get_cache_key", None) is not None  # a subclass's method
        )

    def load(self, key: K) -> Future[V]:
        # aiodataloader's own `load`, but the future is a SharedFuture (its internals,
        # `_cache` and `do_resolve_reject`, are pinned by tests/loaders/test_dataloader.py).
        if key is None:
            raise TypeError("The loader.load() function must be called with a value, got None.")
        cache_key = self.get_cache_key(key)
        if self.cache:
            cached: Future[V] | None = self._cache.get(cache_key)
            if cached is not None:
                return cached
        future: Future[V] = SharedFuture(loop=self.loop)
        if self.cache:
            self._cache[cache_key] = future
        self.do_resolve_reject(key, future)
        return future

    def do_resolve_reject(self, key: K, future: Future[V]) -> None:
        # Queued; the first key of a batch schedules its dispatch (aiodataloader's
        # contract: pinned by tests/loaders/test_dataloader.py).
        self._queue.append(Loader(key=key, future=future))
        if len(self._queue) == 1:
            self.loop.call_soon(self._dispatch_next_turn)

    def _dispatch_next_turn(self) -> None:
        # aiodataloader takes the queue two turns after the first load (a callback,
        # then its task's first step): the keys loaded until then share the batch.
        # The same window here, with a callback in place of its task.
        self.loop.call_soon(self._dispatch_queued)

    def _dispatch_queued(self) -> None:
        batch = self._take_batch()
        if batch is not None:
            # Unreferenced, as aiodataloader's own: while it waits, the driver's
            # future holds it; a done-callback to keep it would cost a turn of the loop.
            self.loop.create_task(batch)

    def queue(self, keys: Iterable[K]) -> tuple[list[Future[V]], Coroutine[Any, Any, None] | None]:
        """Loads `keys` without scheduling a dispatch: their futures not yet done, and
        the batch of every key queued so far (these and any queued before), for the
        caller to await, or None when nothing is queued.

        Called with every key of a level (the dashboard queues 500 per request), so
        it makes no Python call per key: its cache key is the key itself unless the
        loader was given `get_cache_key`, and each queue entry is built as the tuple
        it is (a namedtuple's `__new__` is Python)."""
        pending: list[Future[V]] = []
        cache = self._cache
        caching = self.cache
        custom_key = self._custom_cache_key
        queued = self._queue
        loop = self.loop
        make = tuple.__new__
        for key in keys:
            cache_key = self.get_cache_key(key) if custom_key else key
            future: Future[V] | None = cache.get(cache_key)
            if future is None:
                future = SharedFuture(loop=loop)
                if caching:
                    cache[cache_key] = future
                queued.append(make(Loader, (key, future)))
            if not future.done():
                pending.append(future)
        return pending, self._take_batch()

    def _take_batch(self) -> Coroutine[Any, Any, None] | None:
        queued = self._queue
        if not queued:
            return None
        self._queue = []
        return self._dispatch(queued)

    async def _dispatch(self, queued: list[Loader]) -> None:
        """aiodataloader's batch; cancelled (an operation's timeout reaches a batch it
        runs itself), its keys fail rather than wait forever, and are loaded afresh
        next time."""
        try:
            await dispatch_queue_batch(self, queued)
        except BaseException:
            cancelled = RuntimeError("the batch loading this value was cancelled")
            for entry in queued:
                self._cache.pop(self.get_cache_key(entry.key), None)
                if not entry.future.done():
                    entry.future.set_exception(cancelled)
                    entry.future.exception()  # retrieved: whoever waits gets it, no log
            raise
