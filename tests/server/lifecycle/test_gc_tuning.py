"""The collector's tuning in the lifespan: frozen startup objects, GC_THRESHOLDS, and the
collector as it was once the app is closed (server/lifecycle/gc_tuning.py)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from server.lifecycle.gc_tuning import tuned_gc
from server.settings import Settings, SettingsError
from tests.conftest import Database
from tests.server.apps import serve

PRODUCTS = "{ products(first: 2) { nodes { name } } }"


@pytest.fixture(autouse=True)
def collector_restored() -> Iterator[None]:
    """Whatever a test does, the suite's collector is left as it was."""
    thresholds = gc.get_threshold()
    yield
    gc.set_threshold(*thresholds)
    gc.unfreeze()


async def test_a_served_app_freezes_its_startup_objects_and_sets_the_thresholds(
    db: Database,
) -> None:
    before = gc.get_threshold()
    async with serve(db, GC_TUNING="true", GC_THRESHOLDS="12345,7,9") as api:
        assert gc.get_threshold() == (12345, 7, 9)
        # Everything alive at startup (modules, schema, engine) no collection walks again.
        assert gc.get_freeze_count() > 10_000
        assert "errors" not in await api.query(PRODUCTS)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


async def test_gc_tuning_off_leaves_the_collector_alone(db: Database) -> None:
    before = gc.get_threshold()
    async with serve(db, GC_TUNING="false", GC_THRESHOLDS="12345,7,9") as api:
        assert gc.get_threshold() == before
        assert gc.get_freeze_count() == 0
        assert "errors" not in await api.query(PRODUCTS)


def test_the_default_is_on_with_thresholds_above_pythons() -> None:
    settings = Settings.from_env({})
    assert settings.gc_tuning is True
    assert settings.gc_thresholds[0] > 700


class Node:
    def __init__(self) -> None:
        self.self = self


def test_garbage_made_before_the_freeze_is_collected_not_frozen() -> None:
    gc.disable()  # nothing collects it before the freeze but tuned_gc itself
    try:
        garbage = weakref.ref(Node())  # a cycle, unreachable at once
        assert garbage() is not None
        with tuned_gc(thresholds=(1000, 10, 10)):
            assert garbage() is None
            assert gc.get_freeze_count() > 0
    finally:
        gc.enable()


@pytest.mark.parametrize("raw", ["0,10,10", "100,-1,10", "100,10", "a,b,c", "1,2,3,4"])
def test_thresholds_that_cannot_be_used_are_refused(raw: str) -> None:
    with pytest.raises(SettingsError, match="GC_THRESHOLDS"):
        Settings.from_env({"GC_THRESHOLDS": raw})
