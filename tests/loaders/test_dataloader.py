"""IsolatedDataLoader: one caller's cancellation never reaches another caller of the key."""

from __future__ import annotations

import asyncio

import pytest

from loaders.dataloader import IsolatedDataLoader, LoadCancelled


async def test_cancelling_one_caller_leaves_the_others_their_value() -> None:
    release = asyncio.Event()
    batches: list[list[int]] = []

    async def batch(keys: list[int]) -> list[str]:
        batches.append(keys)
        await release.wait()
        return [f"v{k}" for k in keys]

    loader: IsolatedDataLoader[int, str] = IsolatedDataLoader(batch)
    loser = asyncio.ensure_future(loader.load(1))
    winner = asyncio.ensure_future(loader.load(1))
    await asyncio.sleep(0)
    loser.cancel()
    release.set()
    assert await winner == "v1"
    assert loser.cancelled()
    assert batches == [[1]]
    assert await loader.load(1) == "v1"  # the shared value stays cached


async def test_a_cancelled_batch_is_an_ordinary_error_for_its_callers() -> None:
    async def batch(keys: list[int]) -> list[str]:
        await asyncio.sleep(3600)
        return []

    loader: IsolatedDataLoader[int, str] = IsolatedDataLoader(batch)
    own = loader.load(1)
    await asyncio.sleep(0)
    loader._cache[1].cancel()  # the shared future, as a cancelled batch would leave it
    with pytest.raises(LoadCancelled):
        await own


async def test_errors_reach_every_caller() -> None:
    async def batch(keys: list[int]) -> list[object]:
        return [ValueError(f"no {k}") for k in keys]

    loader: IsolatedDataLoader[int, object] = IsolatedDataLoader(batch)
    first, second = loader.load(1), loader.load(1)
    for future in (first, second):
        with pytest.raises(ValueError, match="no 1"):
            await future
