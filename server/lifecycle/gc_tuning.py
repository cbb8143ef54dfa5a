"""The cyclic garbage collector kept out of the requests' way, in each serving process.

Python's collector pauses the process to walk the objects it tracks. A full
collection walks every object alive, most of them built once at startup (modules,
the schema, the engine, the caches): on a cached hit those pauses made p99 86
times p50. After startup, `tuned_gc` runs one full collection and moves every
object still alive into the permanent generation (`gc.freeze`), which collections
never walk; and it raises the thresholds (GC_THRESHOLDS), so the youngest
generation is collected after tens of thousands of net allocations instead of 700
(bench/gc_pauses.py measured the choice).

Requests leave no reference cycles behind (tests/server/test_reference_cycles.py),
so what a request allocates is freed by reference counting and never reaches a
collection; larger thresholds only delay the collection of what little cyclic
garbage remains. On exit the previous thresholds come back and the frozen objects
are unfrozen, so an app built and closed again in the same process (the tests)
leaves the collector as it found it.

It runs in the lifespan, i.e. in every worker of `storefront serve --workers N`
(each a process of its own), once the services are open and the schema is built.

Example:
    with gc_tuned(settings):  # tuned_gc(thresholds=settings.gc_thresholds), or nothing
        ...  # serve
"""

from __future__ import annotations

import contextlib
import gc
import logging
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from server.settings import Settings

logger = logging.getLogger(__name__)

Thresholds = tuple[int, int, int]


@contextlib.contextmanager
def tuned_gc(*, thresholds: Thresholds) -> Iterator[None]:
    """Collects, freezes what is alive and sets `thresholds` until the block exits."""
    previous: Thresholds = gc.get_threshold()
    start = time.perf_counter()
    gc.collect()
    gc.freeze()
    gc.set_threshold(*thresholds)
    logger.debug(
        "gc: %d objects frozen in %.0f ms; thresholds %s",
        gc.get_freeze_count(),
        (time.perf_counter() - start) * 1000,
        thresholds,
    )
    try:
        yield
    finally:
        gc.set_threshold(*previous)
        gc.unfreeze()


def gc_tuned(settings: Settings) -> contextlib.AbstractContextManager[None]:
    """`tuned_gc` with GC_THRESHOLDS, or nothing with GC_TUNING off."""
    if not settings.gc_tuning:
        return contextlib.nullcontext()
    return tuned_gc(thresholds=settings.gc_thresholds)
