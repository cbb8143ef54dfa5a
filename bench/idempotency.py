"""What an Idempotency-Key costs a write, and what a replay costs: placeOrder.

Against a real `storefront serve` process (one worker) over PostgreSQL, one
customer places `--n` orders without a key, `--n` with a fresh key each, then
replays each keyed request (stored answer) and rebuilds each once more after
dropping the stored answers (the "connection died after COMMIT" path). Prints
the median and p95 latency the client sees for each form. A fresh key adds a
key lookup before the write and an INSERT inside it; the answer is stored
after it was sent.

    .venv/bin/python -m bench.idempotency --database-url postgresql://...:5432/DB [--n 200]

The database must be migrated; the script adds a category, a product and a user.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable

import httpx
from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bench.processes import server
from models import Category, IdempotencyKey, Product, utcnow
from resolvers.tokens import create_token
from schema.global_id import to_global_id
from server.database import create_engine, create_sessionmaker
from server.settings import Settings

PLACE = "mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { id totalCents } }"


async def _timed(n: int, call: Callable[[int], Awaitable[None]]) -> list[float]:
    times = []
    for i in range(n):
        start = time.perf_counter()
        await call(i)
        times.append((time.perf_counter() - start) * 1000)
    return times


async def main(database_url: str, n: int) -> None:
    engine = create_engine(Settings.from_env({"DATABASE_URL": database_url}))
    sessionmaker = create_sessionmaker(engine)
    try:
        product, token = await _customer_and_product(sessionmaker)
        with server({"DATABASE_URL": database_url}) as (base, _process):
            async with httpx.AsyncClient(base_url=base, timeout=30) as client:
                await _run(client, sessionmaker, product, token, n)
    finally:
        await engine.dispose()


async def _customer_and_product(sessionmaker: async_sessionmaker[AsyncSession]) -> tuple[int, str]:
    async with sessionmaker.begin() as session:
        category = (
            await session.execute(insert(Category).values(name="Bench").returning(Category.id))
        ).scalar_one()
        now = utcnow()
        product = (
            await session.execute(
                insert(Product)
                .values(
                    sku=f"BENCH-{uuid.uuid4().hex}",
                    name="Bench",
                    description="",
                    price_cents=100,
                    category_id=category,
                    active=True,
                    created_at=now,
                    updated_at=now,
                )
                .returning(Product.id)
            )
        ).scalar_one()
    email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
    token = (await create_token(sessionmaker=sessionmaker, email=email)).token
    return int(product), token


async def _run(
    client: httpx.AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    product: int,
    token: str,
    n: int,
) -> None:
    line = {"productId": to_global_id("Product", product), "quantity": 1}
    body = {"query": PLACE, "variables": {"input": {"lines": [line]}}}
    keys = [uuid.uuid4().hex for _ in range(n)]

    async def place(key: str | None, replayed: bool = False) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        if key is not None:
            headers["Idempotency-Key"] = key
        response = await client.post("/graphql", json=body, headers=headers)
        if response.status_code != 200 or "errors" in response.json():
            raise RuntimeError(response.text)
        if (response.headers.get("idempotent-replayed") == "true") != replayed:
            raise RuntimeError(f"expected replayed={replayed}: {response.headers}")

    for _ in range(20):  # warm up: token cache, pool, prepared statements
        await place(None)
    print(f"placeOrder, {n} sequential requests of each form, one client, PostgreSQL")
    print(f"{'form':<26}{'p50 ms':>8}{'p95 ms':>8}")
    # Interleaved, so both forms see the same load on a shared machine.
    plain, keyed = await _timed_pairs(n, lambda i: place(None), lambda i: place(keys[i]))
    _report("no key", plain)
    _report("fresh key", keyed)
    _report("replay (stored answer)", await _timed(n, lambda i: place(keys[i], replayed=True)))
    async with sessionmaker.begin() as session:
        await session.execute(update(IdempotencyKey).values(response=None))
    _report("replay (rebuilt answer)", await _timed(n, lambda i: place(keys[i], replayed=True)))


async def _timed_pairs(
    n: int, first: Callable[[int], Awaitable[None]], second: Callable[[int], Awaitable[None]]
) -> tuple[list[float], list[float]]:
    firsts: list[float] = []
    seconds: list[float] = []
    for i in range(n):
        for call, times in ((first, firsts), (second, seconds)):
            start = time.perf_counter()
            await call(i)
            times.append((time.perf_counter() - start) * 1000)
    return firsts, seconds


def _report(name: str, times: list[float]) -> None:
    p95 = statistics.quantiles(times, n=20)[-1]
    print(f"{name:<26}{statistics.median(times):>8.2f}{p95:>8.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--n", type=int, default=200)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.database_url, arguments.n))
