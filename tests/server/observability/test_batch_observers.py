"""Several BatchObservers behind one: each told of every batch, nested in order."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from server.observability.batch_observers import BatchObservers, combine


class Recording:
    def __init__(self, name: str, events: list[str]) -> None:
        self.name = name
        self.events = events

    @contextlib.contextmanager
    def batch(self, loader: str, keys: int) -> Iterator[None]:
        self.events.append(f"{self.name} enter {loader} {keys}")
        try:
            yield
        except ValueError:
            self.events.append(f"{self.name} saw error")
            raise
        finally:
            self.events.append(f"{self.name} exit")


def test_combine_keeps_none_and_a_single_observer_as_they_are() -> None:
    only = Recording("only", [])
    assert combine() is None
    assert combine(None, None) is None
    assert combine(None, only) is only


def test_every_observer_sees_each_batch_the_first_outermost() -> None:
    events: list[str] = []
    observer = combine(Recording("metrics", events), None, Recording("tracing", events))
    assert isinstance(observer, BatchObservers)
    with observer.batch("product_by_id", 3):
        events.append("batch runs")
    assert events == [
        "metrics enter product_by_id 3",
        "tracing enter product_by_id 3",
        "batch runs",
        "tracing exit",
        "metrics exit",
    ]


def test_a_failing_batch_reaches_every_observer() -> None:
    events: list[str] = []
    observer = combine(Recording("metrics", events), Recording("tracing", events))
    assert observer is not None
    with pytest.raises(ValueError, match="boom"), observer.batch("user_by_id", 1):
        raise ValueError("boom")
    assert events[-4:] == ["tracing saw error", "tracing exit", "metrics saw error", "metrics exit"]
