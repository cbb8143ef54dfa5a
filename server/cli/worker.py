"""`storefront worker` (background work: the outbox relay) and `storefront events status`.

Imports only click at module level: `storefront --help` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from server.events.protocol import EventConsumer
    from server.settings import Settings


@click.command()
@click.option("--once", is_flag=True, help="Publish what the outbox holds now, then exit.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Serve /livez, /readyz and /metrics on HOST:PORT (default: WORKER_PORT; 0: none).",
)
def worker(once: bool, port: int | None) -> None:
    """Run the background worker: the outbox relay and webhook deliveries.

    Takes the committed writes' events from the outbox (DATABASE_URL) in order,
    publishes them on Redis (REDIS_URL), where every API instance applies them to
    its caches, and marks them published; at least once. Any number of workers
    may run, on any host: on PostgreSQL they share the rows (FOR UPDATE SKIP
    LOCKED) and wake on each commit's NOTIFY; they also poll every
    EVENTS_POLL_INTERVAL_MS. Run servers with EVENTS_RELAY=worker (the default
    with REDIS_URL) so that the relay runs here only.

    Without REDIS_URL the server relays its own events (EVENTS_RELAY=auto) and a
    worker has nobody to publish to: it only marks rows published.

    With REDIS_URL and WEBHOOK_SECRET_KEY it also fans events out to webhooks and
    runs their delivery jobs (saq: WEBHOOK_CONCURRENCY at once, retries, the sweep;
    README "Webhooks").

    With --port (or WORKER_PORT) it serves probes and metrics on HOST: /livez,
    /readyz (database, Redis, and the outbox's depth and oldest age) and /metrics
    (storefront_events_published_total, storefront_webhook_deliveries_total).

    SIGTERM or SIGINT: the pass in progress completes (or rolls back), then exit
    status 0.
    """
    from server.cli.runtime import load_settings, run
    from server.observability.log_config import configure_from

    configure_from(load_settings())
    published = run(
        lambda settings: _work(
            settings, once=once, port=settings.worker_port if port is None else port
        )
    )
    if once:
        click.echo(f"Published {published} events.")


def consumers(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> list[EventConsumer]:
    """What the relay hands each batch to, besides publishing it (webhook fan-out)."""
    return []


async def _work(settings: Settings, *, once: bool, port: int) -> int:
    import asyncio
    import logging
    import os
    import signal

    from server.cli.runtime import cli_engine
    from server.database import create_sessionmaker
    from server.events.protocol import EventPublisher
    from server.events.redis_channel import RedisEventPublisher
    from server.events.runtime import build_relay
    from server.events.webhooks.runner import webhook_jobs
    from server.events.worker_http import WorkerProbes, worker_http
    from server.observability.metrics import Metrics, multiprocess_dir
    from server.redis_guard import create_redis

    logger = logging.getLogger("storefront.events")
    engine = cli_engine(settings)
    redis = create_redis(settings, timeout=max(1.0, settings.redis_timeout_ms / 1000))
    try:
        sessionmaker = create_sessionmaker(engine)
        publisher: EventPublisher = _Nobody() if redis is None else RedisEventPublisher(redis)
        if redis is None:
            logger.warning("events: no REDIS_URL; events are marked published, not sent")
        metrics = (
            Metrics.create(multiprocess_dir=multiprocess_dir())
            if settings.metrics_enabled
            else None
        )
        # Webhook deliveries (saq jobs) run beside the relay, whose fan-out queues them;
        # `--once` fans out (queues) but leaves the jobs to a running worker.
        probes = WorkerProbes(sessionmaker=sessionmaker, redis=redis, metrics=metrics)
        async with (
            worker_http(probes, host=settings.host, port=0 if once else port),
            webhook_jobs(
                settings, sessionmaker=sessionmaker, metrics=metrics, run_jobs=not once
            ) as fanout,
        ):
            loop = build_relay(
                settings,
                sessionmaker=sessionmaker,
                dialect="postgresql" if engine.dialect.name == "postgresql" else "sqlite",
                publisher=publisher,
                consumers=[*consumers(settings, sessionmaker), *fanout],
                metrics=metrics,
            )
            if once:
                return await loop.relay.drain()
            running = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                running.add_signal_handler(signum, loop.stop)
            logger.info("worker started: relaying the outbox (pid %d)", os.getpid())
            await loop.run()
        logger.info("worker stopped")
        return 0
    finally:
        if redis is not None:
            await redis.aclose()
        await engine.dispose()


class _Nobody:
    async def publish(self, events: object) -> None:
        return None


@click.group()
def events() -> None:
    """The events of committed writes (the outbox)."""


@events.command("status")
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of lines.")
def events_status(as_json: bool) -> None:
    """Outbox depth (events not yet published) and the age of the oldest one."""
    import json

    from server.cli.runtime import run

    report = run(_status)
    if as_json:
        click.echo(json.dumps(report, sort_keys=True))
        return
    for title, values in report.items():
        click.echo(f"{title}:")
        for name, value in values.items():
            click.echo(f"  {name}: {'-' if value is None else value}")


async def _status(settings: Settings) -> dict[str, dict[str, object]]:
    from server.cli.runtime import cli_engine
    from server.database import create_sessionmaker
    from server.events.status import SECTIONS

    engine = cli_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session:
            return dict([await section(session) for section in SECTIONS])
    finally:
        await engine.dispose()
