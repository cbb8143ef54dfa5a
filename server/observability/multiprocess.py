"""prometheus-client's multiprocess mode under `storefront serve --workers N`.

Each worker writes its figures to files in `PROMETHEUS_MULTIPROC_DIR`, and the
worker answering `/metrics` reads all of them. `serve` gives every run a
directory of its own, made (or emptied) before the workers start, so figures of
an earlier run never add up with this one's, and removes it when it stops.
prometheus-client picks its mode when first imported: the variable must be set
before any worker imports it, as `serve` does.

Example:
    with multiprocess_metrics(workers=4):
        uvicorn.run(..., workers=4)
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, MutableMapping
from pathlib import Path

from server.observability.metrics import MULTIPROC_DIR_VARIABLE, multiprocess_dir


@contextlib.contextmanager
def multiprocess_metrics(
    *, workers: int, env: MutableMapping[str, str] | None = None
) -> Iterator[str | None]:
    """A fresh metrics directory for `workers` > 1 processes (set in `env`, the workers'
    environment), removed on exit; an operator's own PROMETHEUS_MULTIPROC_DIR is
    emptied and kept. Yields the directory (None for one worker: nothing to share)."""
    env = os.environ if env is None else env
    given = env.get(MULTIPROC_DIR_VARIABLE)
    if given:
        directory = Path(given)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):
            stale.unlink()
        yield str(directory)
        return
    if workers <= 1:
        yield None
        return
    made = tempfile.mkdtemp(prefix="storefront-metrics-")
    env[MULTIPROC_DIR_VARIABLE] = made
    try:
        yield made
    finally:
        env.pop(MULTIPROC_DIR_VARIABLE, None)
        shutil.rmtree(made, ignore_errors=True)


def forget_process(pid: int | None = None) -> None:
    """Drops a stopped worker's live gauges (its open subscriptions are no longer open);
    its counters stay, as Prometheus expects of counters."""
    directory = multiprocess_dir()
    if directory is not None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(  # type: ignore[no-untyped-call]
            os.getpid() if pid is None else pid, directory
        )
