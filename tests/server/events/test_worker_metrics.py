"""The event and delivery metrics of operations.md, counted where the work runs:

- a real `storefront worker --port N` relays and delivers, and its own `/metrics`
  counts `storefront_events_published_total{event}` and
  `storefront_webhook_deliveries_total{event,result}`; its `/readyz` reports the
  database, Redis and the outbox's lag; `/livez` answers; SIGTERM ends it with 0;
- a server without Redis relays its own events, counted on its `/metrics`.
"""

from __future__ import annotations

import asyncio
import signal
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from schema.global_id import to_global_id
from tests.conftest import Database
from tests.factories import Factory
from tests.live_server import free_port, live_server
from tests.server.apps import serve
from tests.webhook_live import live_worker
from tests.webhook_receiver import Receiver
from tests.webhook_support import delete_queue, webhook_env

CREATE = """
mutation($input: CreateWebhookInput!) { createWebhook(input: $input) { webhook { id } } }"""
PLACE = "mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { id } }"
ORDERS = 3


def samples(page: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The samples of one metric family, by their sorted labels."""
    found: dict[tuple[tuple[str, str], ...], float] = {}
    for family in text_string_to_metric_families(page):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


async def _token(db: Database, email: str, role: str | None = None) -> str:
    from resolvers.tokens import create_token

    return (await create_token(sessionmaker=db.sessionmaker, email=email, role=role)).token


async def _until(check: object, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not await check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {within} s")
        await asyncio.sleep(0.1)


async def test_a_worker_serves_its_event_and_delivery_metrics_and_probes(
    db: Database, factory: Factory
) -> None:
    port = free_port()
    env = webhook_env(DATABASE_URL=db.url, WORKER_PORT=str(port))
    category = await factory.category()
    product = to_global_id("Product", await factory.product(category_id=category, price_cents=5))
    admin = await _token(db, "admin@example.com", role="admin")
    customer = await _token(db, "c@example.com")
    try:
        with (
            Receiver(statuses=[500], default=200) as receiver,
            live_server(env) as server,
            live_worker(env) as worker,
        ):
            async with (
                httpx.AsyncClient(base_url=server.url, timeout=30) as api,
                httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as probe,
            ):

                async def call(query: str, variables: dict[str, object], token: str) -> None:
                    answer = await api.post(
                        "/graphql",
                        json={"query": query, "variables": variables},
                        headers={"Authorization": f"Bearer {token}"},
                    )
                    assert "errors" not in answer.json(), answer.json()

                async def serving() -> bool:
                    try:
                        return (await probe.get("/livez")).status_code == 200
                    except httpx.TransportError:
                        return False

                await _until(serving, 60, f"the worker's /livez\n{worker.output()}")
                hook = {"url": receiver.url, "events": ["ORDER_PLACED"]}
                await call(CREATE, {"input": hook}, admin)
                lines = [{"productId": product, "quantity": 1}]
                for _ in range(ORDERS):
                    await call(PLACE, {"input": {"lines": lines}}, customer)

                async def delivered() -> bool:
                    page = (await probe.get("/metrics")).text
                    counted = samples(page, "storefront_webhook_deliveries_total")
                    key = (("event", "order.placed"), ("result", "delivered"))
                    return counted.get(key) == ORDERS

                await _until(delivered, 60, f"{ORDERS} deliveries counted\n{worker.output()}")
                metrics = await probe.get("/metrics")
                ready = await probe.get("/readyz")
                live = await probe.get("/livez")
                worker.process.send_signal(signal.SIGTERM)
                assert worker.process.wait(timeout=30) == 0, worker.output()
    finally:
        await delete_queue(env["REDIS_URL"], env["WEBHOOK_QUEUE"])
    assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
    published = samples(metrics.text, "storefront_events_published_total")
    assert published[(("event", "order.placed"),)] == ORDERS
    deliveries = samples(metrics.text, "storefront_webhook_deliveries_total")
    # The first answer was 500: one retry, then every order delivered.
    assert deliveries == {
        (("event", "order.placed"), ("result", "delivered")): ORDERS,
        (("event", "order.placed"), ("result", "retry")): 1,
    }
    assert len(receiver.received) == ORDERS + 1
    assert live.json() == {"status": "ok"}
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ok",
        "checks": {"database": "up", "redis": "up"},
        "outbox": {"unpublished": 0, "oldest_unpublished_age_seconds": None},
    }


async def test_a_worker_without_metrics_answers_404_and_its_readyz_names_a_redis_down(
    db: Database,
) -> None:
    port = free_port()
    env = webhook_env(
        DATABASE_URL=db.url,
        WORKER_PORT=str(port),
        METRICS_ENABLED="false",
        # The relay keeps retrying an unreachable Redis; the probe says so.
        REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
    )
    env.pop("WEBHOOK_SECRET_KEY")  # no webhooks: saq would need Redis to start
    with live_worker(env) as worker:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as probe:

            async def answered() -> bool:
                try:
                    return (await probe.get("/readyz")).status_code in (200, 503)
                except httpx.TransportError:
                    return False

            await _until(answered, 60, f"the worker's /readyz\n{worker.output()}")
            ready = await probe.get("/readyz")
            metrics = await probe.get("/metrics")
    assert ready.status_code == 503
    assert ready.json()["status"] == "unavailable"
    assert ready.json()["checks"] == {"database": "up", "redis": "down"}
    assert metrics.status_code == 404


async def test_a_server_relaying_its_own_events_counts_them(db: Database, factory: Factory) -> None:
    # Without Redis the relay runs inside the server (EVENTS_RELAY=auto).
    category = await factory.category()
    product = to_global_id("Product", await factory.product(category_id=category, price_cents=5))
    async with serve(db) as api:
        customer = await api.token("c@example.com")
        lines = [{"productId": product, "quantity": 1}]
        for _ in range(2):
            await api.data(PLACE, {"input": {"lines": lines}}, token=customer)

        async def counted() -> bool:
            page = (await api.client.get("/metrics")).text
            found = samples(page, "storefront_events_published_total")
            return found.get((("event", "order.placed"),)) == 2

        await _until(counted, 30, "two order.placed counted on the server's /metrics")
