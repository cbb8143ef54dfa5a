"""Webhook deliveries per second to a local receiver.

A receiver on 127.0.0.1 answers every POST `204`; one webhook subscribes to
order.placed; `--n` events are fanned out (as the outbox relay does: the
delivery rows in one transaction, then their jobs queued) and the saq worker
of `storefront worker` (WEBHOOK_CONCURRENCY jobs at once) delivers them. Prints
how long fan-out and delivery took and deliveries/s, from the first job
queued to the last row DELIVERED (each delivery: read the row, check the URL,
sign, POST, record the outcome).

    .venv/bin/python -m bench.webhook_throughput --database-url postgresql://.../DB \\
        --redis-url redis://127.0.0.1:6379/2 [--n 2000] [--concurrency 20]

The database must be migrated; the script adds a webhook and its deliveries and
deletes them (and its saq queue) at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from cryptography.fernet import Fernet
from sqlalchemy import delete, func, insert, select

from models import Webhook, WebhookDelivery
from server.database import create_engine, create_sessionmaker
from server.events.webhooks.fanout import WebhookFanOut
from server.events.webhooks.jobs import create_worker
from server.events.webhooks.queue import create_queue
from server.events.webhooks.secret_box import SecretBox
from server.settings import Settings


class Event:
    def __init__(self, i: int) -> None:
        self.event_id = str(uuid.uuid4())
        self.type = "order.placed"
        self.data: dict[str, Any] = {"id": f"order-{i}", "status": "PENDING", "totalCents": 1999}
        self.occurred_at = datetime.now(UTC)


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A minimal HTTP/1.1 keep-alive receiver: read a request, answer 204."""
    with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
    writer.close()


async def main(database_url: str, redis_url: str, n: int, concurrency: int) -> None:
    receiver = await asyncio.start_server(_answer, "127.0.0.1", 0)
    port = receiver.sockets[0].getsockname()[1]
    key = Fernet.generate_key().decode()
    settings = Settings.from_env(
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "WEBHOOK_SECRET_KEY": key,
            "WEBHOOK_QUEUE": f"bench-webhooks-{uuid.uuid4().hex[:8]}",
            "WEBHOOK_ALLOW_HTTP": "true",
            "WEBHOOK_ALLOW_PRIVATE": "true",
            "WEBHOOK_CONCURRENCY": str(concurrency),
        }
    )
    engine = create_engine(settings)
    sessionmaker = create_sessionmaker(engine)
    queue = create_queue(settings)
    await queue.connect()
    async with sessionmaker.begin() as session:
        webhook_id = (
            await session.execute(
                insert(Webhook)
                .values(
                    url=f"http://127.0.0.1:{port}/hook",
                    events=["order.placed"],
                    secret=SecretBox.from_keys(key).seal("whsec_" + "A" * 44),
                    active=True,
                    created_at=datetime.now(UTC),
                )
                .returning(Webhook.id)
            )
        ).scalar_one()
    worker = create_worker(settings=settings, queue=queue, sessionmaker=sessionmaker)
    task = asyncio.create_task(worker.start())
    try:
        started = time.perf_counter()
        async with sessionmaker.begin() as session:
            after = await WebhookFanOut(settings=settings, queue=queue).consume(
                session, [Event(i) for i in range(n)]
            )
        fanned = time.perf_counter()
        assert after is not None
        await after()
        queued = time.perf_counter()
        delivered = 0
        while delivered < n:
            await asyncio.sleep(0.05)
            async with sessionmaker() as session:
                delivered = (
                    await session.scalar(
                        select(func.count()).where(
                            WebhookDelivery.webhook_id == webhook_id,
                            WebhookDelivery.status == "delivered",
                        )
                    )
                    or 0
                )
        done = time.perf_counter()
        print(f"backend: {engine.dialect.name}, deliveries: {n}, concurrency: {concurrency}")
        print(f"fan-out (rows in one transaction): {fanned - started:.2f} s")
        print(f"jobs queued: {queued - fanned:.2f} s")
        print(f"delivered: {done - fanned:.2f} s -> {n / (done - fanned):.0f} deliveries/s")
    finally:
        await worker.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        async with sessionmaker.begin() as session:
            await session.execute(delete(Webhook).where(Webhook.id == webhook_id))
        redis: Any = queue.redis
        keys = [k async for k in redis.scan_iter(match=f"saq:*{settings.webhook_queue}*")]
        if keys:
            await redis.delete(*keys)
        await queue.disconnect()
        await engine.dispose()
        receiver.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(main(args.database_url, args.redis_url, args.n, args.concurrency))
