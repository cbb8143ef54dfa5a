"""Deliveries made by the saq worker to a real HTTP receiver: signed as Standard
Webhooks (checked with the reference `standardwebhooks` package), retried until
2xx, stopped by 410, FAILED at the budget and redelivered, refused by the SSRF
guard at delivery time. Both backends; the job queue is the test Redis."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import standardwebhooks
from sqlalchemy import select, update

from models import OutboxEvent, Webhook, WebhookDelivery, utcnow
from server.events.webhooks.delivery import DeliveryOptions, attempt
from server.events.webhooks.queue import MAX_RETRY_DELAY_SECONDS, enqueue_deliveries
from server.events.webhooks.secret_box import SecretBox
from server.events.webhooks.setup import url_policy
from server.settings import Settings
from tests.conftest import Api, Database
from tests.server.apps import serve
from tests.webhook_receiver import Receiver
from tests.webhook_support import delete_queue, webhook_env
from tests.webhook_worker import FakeEvent, eventually, fan_out, running_worker

CREATE = """
mutation($input: CreateWebhookInput!) {
  createWebhook(input: $input) { secret webhook { id } }
}"""
REDELIVER = "mutation($id: ID!) { redeliverWebhookDelivery(id: $id) { status } }"
LIST = "{ webhooks { nodes { active deliveries { nodes { id status attempts messageId } } } } }"


@pytest.fixture
async def env() -> AsyncIterator[dict[str, str]]:
    values = webhook_env(WEBHOOK_MAX_ATTEMPTS="3")
    yield values
    await delete_queue(values["REDIS_URL"], values["WEBHOOK_QUEUE"])


@pytest.fixture
async def api(db: Database, env: dict[str, str]) -> AsyncIterator[Api]:
    async with serve(db, **env) as served:
        yield served


def _settings(db: Database, env: dict[str, str], **more: str) -> Settings:
    return Settings.from_env({"DATABASE_URL": db.url, **env, **more})


async def _webhook(api: Api, url: str, events: list[str] | None = None) -> tuple[str, str]:
    admin = await api.token("admin@example.com", role="admin")
    variables = {"input": {"url": url, "events": events or ["ORDER_PLACED"]}}
    created = (await api.data(CREATE, variables, token=admin))["createWebhook"]
    return created["secret"], admin


async def _deliveries(db: Database) -> list[WebhookDelivery]:
    async with db.sessionmaker() as session:
        return list(await session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))


async def _all_deliveries_are(db: Database, status: str, count: int) -> None:
    """Waits until there are `count` deliveries, all in `status`."""

    async def settled() -> bool:
        rows = await _deliveries(db)
        return len(rows) == count and {d.status for d in rows} == {status}

    await eventually(settled)


def _order_placed(n: int = 1) -> list[FakeEvent]:
    return [
        FakeEvent("order.placed", {"id": f"T3JkZXI6{i}", "status": "PENDING"}) for i in range(n)
    ]


async def test_a_delivery_is_signed_as_standard_webhooks_and_marked_delivered(
    api: Api, db: Database, env: dict[str, str]
) -> None:
    settings = _settings(db, env)
    with Receiver() as receiver:
        secret, _ = await _webhook(api, receiver.url, ["ORDER_PLACED", "REVIEW_ADDED"])
        async with running_worker(settings, db.sessionmaker) as queue:
            events = [*_order_placed(), FakeEvent("product.updated", {"id": "UHJvZHVjdDox"})]
            await fan_out(settings, db.sessionmaker, queue, events)

            await _all_deliveries_are(db, "delivered", 1)
    (got,) = receiver.received  # product.updated is not subscribed: not delivered
    verified = standardwebhooks.Webhook(secret).verify(got.body, got.headers)
    assert verified["type"] == "order.placed"
    assert verified["data"] == events[0].data
    assert verified["timestamp"] == events[0].occurred_at.isoformat()
    (row,) = await _deliveries(db)
    assert got.headers["webhook-id"] == row.message_id
    assert (row.attempts, row.last_status_code, row.next_attempt_at) == (1, 200, None)
    assert row.delivered_at is not None
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        standardwebhooks.Webhook(secret).verify(got.body + b" ", got.headers)


async def test_a_500_is_retried_with_the_same_message_id_until_a_200(
    api: Api, db: Database, env: dict[str, str]
) -> None:
    settings = _settings(db, env)
    with Receiver(statuses=[500], default=200) as receiver:
        await _webhook(api, receiver.url)
        async with running_worker(settings, db.sessionmaker) as queue:
            await fan_out(settings, db.sessionmaker, queue, _order_placed())

            await _all_deliveries_are(db, "delivered", 1)
    (row,) = await _deliveries(db)
    assert (row.attempts, row.last_status_code) == (2, 200)
    assert [r.headers["webhook-id"] for r in receiver.received] == [row.message_id] * 2
    assert receiver.received[0].body == receiver.received[1].body


async def test_a_410_deactivates_the_webhook(api: Api, db: Database, env: dict[str, str]) -> None:
    settings = _settings(db, env)
    with Receiver(default=410) as receiver:
        _, admin = await _webhook(api, receiver.url)
        async with running_worker(settings, db.sessionmaker) as queue:
            await fan_out(settings, db.sessionmaker, queue, _order_placed())

            await _all_deliveries_are(db, "failed", 1)
            await fan_out(settings, db.sessionmaker, queue, _order_placed())
            listed = await api.data(LIST, token=admin)
            (delivery,) = listed["webhooks"]["nodes"][0]["deliveries"]["nodes"]
            refused = await api.query(REDELIVER, {"id": delivery["id"]}, token=admin)
    assert receiver.count() == 1
    async with db.sessionmaker() as session:
        assert (await session.scalars(select(Webhook.active))).all() == [False]
    # An inactive webhook gets no new deliveries, and its failed ones stay failed.
    assert len(await _deliveries(db)) == 1
    assert refused["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "id"}
    assert "410" in refused["errors"][0]["message"]


async def test_failed_after_the_last_attempt_then_redelivered_with_the_same_message_id(
    api: Api, db: Database, env: dict[str, str]
) -> None:
    settings = _settings(db, env)
    with Receiver(default=503) as receiver:
        _, admin = await _webhook(api, receiver.url)
        async with running_worker(settings, db.sessionmaker) as queue:
            await fan_out(settings, db.sessionmaker, queue, _order_placed())

            await _all_deliveries_are(db, "failed", 1)
            listed = await api.data(LIST, token=admin)
            (delivery,) = listed["webhooks"]["nodes"][0]["deliveries"]["nodes"]
            assert (delivery["status"], delivery["attempts"]) == ("FAILED", 3)
            assert receiver.count() == 3
            receiver.default = 204
            again = await api.data(REDELIVER, {"id": delivery["id"]}, token=admin)
            assert again == {"redeliverWebhookDelivery": {"status": "PENDING"}}

            await _all_deliveries_are(db, "delivered", 1)
    (row,) = await _deliveries(db)
    assert (row.attempts, row.last_status_code) == (4, 204)
    assert {r.headers["webhook-id"] for r in receiver.received} == {delivery["messageId"]}


async def test_the_ssrf_guard_refuses_a_private_address_at_delivery_time(
    api: Api, db: Database, env: dict[str, str]
) -> None:
    # Created while private addresses were allowed; delivered by a worker that refuses them.
    settings = _settings(db, env, WEBHOOK_ALLOW_PRIVATE="false")
    with Receiver() as receiver:
        await _webhook(api, receiver.url)
        async with running_worker(settings, db.sessionmaker) as queue:
            await fan_out(settings, db.sessionmaker, queue, _order_placed())

            async def failed() -> Any:
                rows = await _deliveries(db)
                return [d.status for d in rows] == ["failed"] and rows

            (row,) = await eventually(failed)
    assert receiver.count() == 0
    assert (row.attempts, row.last_status_code) == (3, None)


async def test_fanning_out_an_event_twice_makes_one_delivery(
    api: Api, db: Database, env: dict[str, str]
) -> None:
    settings = _settings(db, env)
    with Receiver() as receiver:
        await _webhook(api, receiver.url)
        await _webhook(api, receiver.url)
        events = _order_placed(3)
        async with running_worker(settings, db.sessionmaker) as queue:
            await fan_out(settings, db.sessionmaker, queue, events)
            await fan_out(settings, db.sessionmaker, queue, events)

            await _all_deliveries_are(db, "delivered", 6)
    ids = [r.headers["webhook-id"] for r in receiver.received]
    assert len(set(ids)) == 6
    pairs = {(json.loads(r.body)["data"]["id"], r.path) for r in receiver.received}
    assert len(pairs) == 3


async def test_deliveries_are_counted_by_status(
    api: Api, db: Database, env: dict[str, str]
) -> None:
    from server.events.webhooks.status import delivery_counts

    settings = _settings(db, env)
    with Receiver(statuses=[410]) as gone, Receiver() as fine:
        await _webhook(api, gone.url)
        await _webhook(api, fine.url)
        async with running_worker(settings, db.sessionmaker) as queue:
            await fan_out(settings, db.sessionmaker, queue, _order_placed())

            async def settled() -> bool:
                return {d.status for d in await _deliveries(db)} == {"delivered", "failed"}

            await eventually(settled)
    assert await delivery_counts(db.sessionmaker) == {"pending": 0, "delivered": 1, "failed": 1}


async def test_many_concurrent_410s_deactivate_the_webhook_once_and_stop_its_attempts(
    api: Api, db: Database, env: dict[str, str]
) -> None:
    # 50 attempts answered 410 at once record their outcome together. On PostgreSQL
    # their bulk updates once took delivery rows in crossing orders: deadlocks, and
    # each rolled-back attempt was made again (538 posts for 500 events).
    concurrency = 50
    settings = _settings(db, env, WEBHOOK_CONCURRENCY=str(concurrency))
    with Receiver(default=410) as gone:
        await _webhook(api, gone.url)
        async with running_worker(settings, db.sessionmaker) as queue:
            await fan_out(settings, db.sessionmaker, queue, _order_placed(300))

            await _all_deliveries_are(db, "failed", 300)
    assert 1 <= gone.count() <= concurrency
    async with db.sessionmaker() as session:
        assert (await session.scalars(select(Webhook.active))).all() == [False]
    attempted = [d.attempts for d in await _deliveries(db)]
    assert sum(attempted) == len([a for a in attempted if a]) <= concurrency


async def test_a_delivery_fanned_out_as_its_webhook_was_deactivated_fails_unattempted(
    api: Api, db: Database, env: dict[str, str]
) -> None:
    # The relay read the webhook as active just before a 410 deactivated it: its new
    # delivery must not stay PENDING forever (the sweep skips inactive webhooks).
    settings = _settings(db, env)
    with Receiver() as receiver:
        await _webhook(api, receiver.url)
        async with running_worker(settings, db.sessionmaker) as queue:
            async with db.sessionmaker.begin() as session:
                await session.execute(update(Webhook).values(active=False))
            # What the relay's fan-out inserts and queues for a webhook read as active.
            await enqueue_deliveries(queue, settings, [await _pending_delivery(db)])

            await _all_deliveries_are(db, "failed", 1)
    assert receiver.count() == 0
    (row,) = await _deliveries(db)
    assert row.attempts == 0


async def _pending_delivery(db: Database) -> int:
    (delivery,) = await _pending_deliveries(db, 1)
    return delivery


async def _pending_deliveries(db: Database, n: int) -> list[int]:
    """Delivery rows as the relay's fan-out inserts them, their jobs not queued."""
    from server.events.webhooks.fanout import body_of

    async with db.sessionmaker.begin() as session:
        webhook_id = (await session.scalars(select(Webhook.id))).one()
        rows = [
            WebhookDelivery(
                webhook_id=webhook_id,
                event_id=event.event_id,
                event_type=event.type,
                message_id=f"msg_test_{i}",
                body=body_of(event),
                status="pending",
                attempts=0,
                max_attempts=3,
                created_at=utcnow(),
                next_attempt_at=utcnow(),
            )
            for i, event in enumerate(_order_placed(n))
        ]
        session.add_all(rows)
        await session.flush()
        return [row.id for row in rows]


def _options(settings: Settings, **changes: float) -> DeliveryOptions:
    options = DeliveryOptions(
        policy=url_policy(settings),
        retry_base_seconds=settings.webhook_retry_base_seconds,
        max_retry_seconds=MAX_RETRY_DELAY_SECONDS,
        timeout_seconds=settings.webhook_timeout_seconds,
    )
    return dataclasses.replace(options, **changes)


async def test_the_sweep_requeues_a_delivery_whose_job_was_lost(
    api: Api, db: Database, env: dict[str, str]
) -> None:
    # The process died between the fan-out's commit and its enqueue: a PENDING row
    # and no job. The sweep (every 2 s here) finds it WEBHOOK_STUCK_SECONDS late.
    settings = _settings(db, env)
    with Receiver() as receiver:
        await _webhook(api, receiver.url)
        (delivery,) = await _pending_deliveries(db, 1)
        async with running_worker(settings, db.sessionmaker):
            await _all_deliveries_are(db, "delivered", 1)
    assert [r.headers["webhook-id"] for r in receiver.received] == ["msg_test_0"]
    assert delivery == (await _deliveries(db))[0].id


async def test_the_sweep_prunes_published_outbox_rows_past_the_retention(
    db: Database, env: dict[str, str]
) -> None:
    settings = _settings(db, env, OUTBOX_RETENTION_DAYS="7")
    now = utcnow()
    ages = {"old-published": (8, True), "young-published": (1, True), "old-waiting": (8, False)}
    async with db.sessionmaker.begin() as session:
        session.add_all(
            OutboxEvent(
                event_id=name,
                type="order.placed",
                entity_id="T3JkZXI6MQ",
                payload={},
                tags=[],
                created_at=now - timedelta(days=days),
                published_at=now - timedelta(days=days) if published else None,
            )
            for name, (days, published) in ages.items()
        )

    async def kept() -> list[str]:
        async with db.sessionmaker() as session:
            return sorted(await session.scalars(select(OutboxEvent.event_id)))

    async with running_worker(settings, db.sessionmaker):

        async def pruned() -> bool:
            return await kept() == ["old-waiting", "young-published"]

        await eventually(pruned)


async def test_a_retry_waits_an_exponential_backoff_with_full_jitter(
    api: Api, db: Database, env: dict[str, str]
) -> None:
    # WEBHOOK_RETRY_BASE_SECONDS * 2^(n-1) bounds the wait after the n-th failed
    # attempt; full jitter draws it anywhere below that bound.
    settings = _settings(db, env, WEBHOOK_RETRY_BASE_SECONDS="30")
    options = _options(settings)
    box = SecretBox.from_keys(settings.webhook_secret_key)
    waits: dict[int, list[float]] = {1: [], 2: []}
    with Receiver(default=503) as receiver:
        await _webhook(api, receiver.url)
        deliveries = await _pending_deliveries(db, 20)
        async with httpx.AsyncClient() as client:
            for attempt_number in (1, 2):
                for delivery in deliveries:
                    before = utcnow()
                    outcome = await attempt(
                        delivery,
                        sessionmaker=db.sessionmaker,
                        box=box,
                        client=client,
                        options=options,
                    )
                    assert outcome.result == "retry"
                    assert outcome.retry_in is not None
                    waits[attempt_number].append(outcome.retry_in)
                    async with db.sessionmaker() as session:
                        row = await session.get_one(WebhookDelivery, delivery)
                    assert row.attempts == attempt_number
                    assert row.last_status_code == 503
                    assert row.next_attempt_at is not None
                    # The row says when, and saq is handed that very delay.
                    scheduled = (row.next_attempt_at - before).total_seconds()
                    assert outcome.retry_in - 1 <= scheduled <= outcome.retry_in + 1
    assert receiver.count() == 40
    assert all(0 <= wait <= 30 for wait in waits[1])
    assert all(0 <= wait <= 60 for wait in waits[2])
    assert max(waits[2]) > 30  # the bound doubled (20 draws under 30 of 60: 1 in 10^6)
    assert len({round(wait, 6) for wait in waits[1] + waits[2]}) == 40  # jittered


async def test_an_attempt_is_cut_at_its_timeout_and_retried(
    api: Api, db: Database, env: dict[str, str]
) -> None:
    settings = _settings(db, env)
    box = SecretBox.from_keys(settings.webhook_secret_key)
    with Receiver(delay=5) as receiver:
        await _webhook(api, receiver.url)
        (delivery,) = await _pending_deliveries(db, 1)
        async with httpx.AsyncClient() as client:
            started = time.monotonic()
            outcome = await attempt(
                delivery,
                sessionmaker=db.sessionmaker,
                box=box,
                client=client,
                options=_options(settings, timeout_seconds=0.5),
            )
            took = time.monotonic() - started
    assert outcome.result == "retry"
    assert took < 3
    (row,) = await _deliveries(db)
    assert (row.status, row.attempts, row.last_status_code) == ("pending", 1, None)
    assert receiver.count() == 1


async def test_a_worker_runs_at_most_webhook_concurrency_attempts_at_once(
    api: Api, db: Database, env: dict[str, str]
) -> None:
    settings = _settings(db, env, WEBHOOK_CONCURRENCY="3")
    with Receiver(delay=0.4) as receiver:
        await _webhook(api, receiver.url)
        async with running_worker(settings, db.sessionmaker) as queue:
            await fan_out(settings, db.sessionmaker, queue, _order_placed(12))

            await _all_deliveries_are(db, "delivered", 12)
    assert receiver.count() == 12
    assert receiver.most_in_flight == 3
