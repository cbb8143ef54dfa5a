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


async def test_a_load_s_batch_keeps_aiodataloader_s_window_with_one_task() -> None:
    # Keys loaded until two turns after the first share its batch, as with
    # aiodataloader, whose dispatch spends a task on getting there.
    started: list[list[int]] = []

    async def batch(keys: list[int]) -> list[int]:
        started.append(keys)
        return keys

    loader: IsolatedDataLoader[int, int] = IsolatedDataLoader(batch)
    tasks_before = len(asyncio.all_tasks())
    first = loader.load(1)
    await asyncio.sleep(0)
    second = loader.load(2)  # a turn later: the same batch
    await asyncio.sleep(0)
    assert started == []
    assert len(asyncio.all_tasks()) == tasks_before + 1  # the batch's, not started yet
    await asyncio.sleep(0)
    assert started == [[1, 2]]
    assert (await first, await second) == (1, 2)


async def test_queued_keys_wait_for_their_caller_to_run_the_batch() -> None:
    batches: list[list[int]] = []

    async def batch(keys: list[int]) -> list[str]:
        batches.append(keys)
        return [f"v{k}" for k in keys]

    loader: IsolatedDataLoader[int, str] = IsolatedDataLoader(batch)
    assert await loader.load(1) == "v1"
    earlier = loader.load(2)  # queued by a plain load: it joins the caller's batch
    pending, run = loader.queue([1, 2, 3])
    assert run is not None
    assert earlier in pending
    assert len(pending) == 2  # 1 is loaded already
    for _ in range(3):
        await asyncio.sleep(0)
    assert batches == [[1]]  # nothing dispatched on its own
    await run
    assert batches == [[1], [2, 3]]
    assert [future.result() for future in pending] == ["v2", "v3"]
    assert loader.queue([1, 2, 3]) == ([], None)  # all loaded: no batch
    await asyncio.sleep(0)
    assert batches == [[1], [2, 3]]  # the plain load's dispatch found nothing left


async def test_a_queued_batch_that_fails_fails_its_keys_only() -> None:
    async def batch(keys: list[int]) -> list[int]:
        raise ValueError("down")

    loader: IsolatedDataLoader[int, int] = IsolatedDataLoader(batch)
    pending, run = loader.queue([1, 2])
    assert run is not None
    await run  # the failure goes to the futures, not to the caller of the batch
    for future in pending:
        with pytest.raises(ValueError, match="down"):
            future.result()


async def test_queued_keys_are_cached_by_a_given_cache_key() -> None:
    batches: list[list[int]] = []

    async def batch(keys: list[int]) -> list[int]:
        batches.append(keys)
        return keys

    loader: IsolatedDataLoader[int, int] = IsolatedDataLoader(
        batch, get_cache_key=lambda key: key % 10
    )
    pending, run = loader.queue([1, 11, 2])
    assert run is not None
    await run
    assert batches == [[1, 2]]  # 11 is 1's cache key
    assert [future.result() for future in pending] == [1, 1, 2]
    assert await loader.load(21) == 1


async def test_a_cancelled_batch_fails_its_keys_and_forgets_them() -> None:
    release = asyncio.Event()

    async def batch(keys: list[int]) -> list[int]:
        await release.wait()
        return keys

    loader: IsolatedDataLoader[int, int] = IsolatedDataLoader(batch)
    pending, run = loader.queue([1])
    assert run is not None
    running = asyncio.ensure_future(run)
    await asyncio.sleep(0)
    running.cancel()  # an operation's timeout, reaching the batch it runs itself
    with pytest.raises(asyncio.CancelledError):
        await running
    with pytest.raises(RuntimeError, match="cancelled"):
        await pending[0]  # whoever waits for the key is not left waiting
    release.set()
    assert await loader.load(1) == 1  # loaded afresh


def test_only_the_one_batch_dispatch_is_offered() -> None:
    async def batch(keys: list[int]) -> list[int]:
        return keys

    loop = asyncio.new_event_loop()
    try:
        for options in ({"batch": False}, {"max_batch_size": 10}):
            with pytest.raises(ValueError, match="always batches"):
                IsolatedDataLoader(batch, loop=loop, **options)
    finally:
        loop.close()
