"""IsolatedDataLoader: one caller's cancellation never reaches another caller of the key."""

from __future__ import annotations

import asyncio

import pytest

from loaders.dataloader import IsolatedDataLoader, SharedFuture


async def test_cancelling_one_caller_leaves_the_others_their_value() -> None:
    release = asyncio.Event()
    batches: list[list[int]] = []

    async def batch(keys: list[int]) -> list[str]:
        batches.append(keys)
        await release.wait()
        return [f"v{k}" for k in keys]

    loader: IsolatedDataLoader[int, str] = IsolatedDataLoader(batch)

    async def caller() -> str:
        return await loader.load(1)

    loser = asyncio.create_task(caller())
    winner = asyncio.create_task(caller())
    await asyncio.sleep(0)
    loser.cancel()
    release.set()
    assert await winner == "v1"
    with pytest.raises(asyncio.CancelledError):
        await loser  # its own cancellation still reaches it, once the load is done
    assert batches == [[1]]
    assert await loader.load(1) == "v1"  # the shared value stays cached


async def test_the_shared_future_refuses_cancel_and_is_cached_per_key() -> None:
    async def batch(keys: list[int]) -> list[str]:
        return [str(k) for k in keys]

    loader: IsolatedDataLoader[int, str] = IsolatedDataLoader(batch)
    first, second = loader.load(1), loader.load(1)
    assert first is second
    assert isinstance(first, SharedFuture)
    assert first.cancel() is False
    assert await first == "1"
    assert loader.load(2) is not first


async def test_errors_reach_every_caller_and_none_is_refused() -> None:
    async def batch(keys: list[int]) -> list[object]:
        return [ValueError(f"no {k}") for k in keys]

    loader: IsolatedDataLoader[int, object] = IsolatedDataLoader(batch)
    first, second = loader.load(1), loader.load(1)
    for future in (first, second):
        with pytest.raises(ValueError, match="no 1"):
            await future
    with pytest.raises(TypeError):
        loader.load(None)  # type: ignore[arg-type]
