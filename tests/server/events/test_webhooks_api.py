"""Webhooks through the real HTTP endpoint: createWebhook, webhooks, deleteWebhook,
redeliverWebhookDelivery, their permissions and their refusals. Both backends."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select, update

from models import Webhook, WebhookDelivery
from server.events.webhooks.secret_box import SecretBox
from tests.conftest import Api, Database, snapshot
from tests.server.apps import serve
from tests.webhook_support import delete_queue, webhook_env

CREATE = """
mutation($input: CreateWebhookInput!) {
  createWebhook(input: $input) { secret webhook { id url events active createdAt } }
}"""
LIST = """
query($status: WebhookDeliveryStatus) {
  webhooks(first: 5) {
    totalCount
    nodes {
      id url events active
      deliveries(first: 5, status: $status) {
        totalCount
        nodes { id messageId event status attempts lastStatusCode nextAttemptAt webhook { id } }
      }
    }
  }
}"""
DELETE = "mutation($id: ID!) { deleteWebhook(id: $id) }"
REDELIVER = "mutation($id: ID!) { redeliverWebhookDelivery(id: $id) { id status messageId } }"


@pytest.fixture
async def env() -> AsyncIterator[dict[str, str]]:
    values = webhook_env(WEBHOOK_ALLOW_PRIVATE="false", WEBHOOK_ALLOW_HTTP="false")
    yield values
    await delete_queue(values["REDIS_URL"], values["WEBHOOK_QUEUE"])


@pytest.fixture
async def hooks(db: Database, env: dict[str, str]) -> AsyncIterator[Api]:
    async with serve(db, **env) as api:
        yield api


def _codes(body: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(e["extensions"]["code"], e["extensions"].get("field")) for e in body["errors"]]


async def _create(api: Api, token: str, url: str = "https://1.1.1.1/hook", **kw: Any) -> Any:
    events = kw.get("events", ["ORDER_PLACED", "PRODUCT_UPDATED"])
    return await api.query(CREATE, {"input": {"url": url, "events": events}}, token=token)


async def test_an_admin_creates_a_webhook_and_sees_its_secret_once(
    hooks: Api, db: Database, env: dict[str, str]
) -> None:
    admin = await hooks.token("admin@example.com", role="admin")
    body = await _create(hooks, admin)
    assert "errors" not in body, body
    created = body["data"]["createWebhook"]
    secret = created["secret"]
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) >= 24
    assert created["webhook"]["events"] == ["ORDER_PLACED", "PRODUCT_UPDATED"]
    assert created["webhook"]["active"] is True
    async with db.sessionmaker() as session:
        stored = (await session.scalars(select(Webhook.secret))).one()
    assert secret not in stored  # encrypted at rest, and opens with the key
    assert SecretBox.from_keys(env["WEBHOOK_SECRET_KEY"]).open(stored) == secret
    listed = await hooks.data(LIST, token=admin)
    assert listed["webhooks"]["totalCount"] == 1
    assert secret not in str(listed)


async def test_customers_are_forbidden_and_anonymous_callers_unauthenticated(
    hooks: Api, db: Database
) -> None:
    customer = await hooks.token("c@example.com")
    before = await snapshot(db)
    assert _codes(await _create(hooks, customer)) == [("FORBIDDEN", None)]
    assert _codes(
        await hooks.query(
            CREATE, {"input": {"url": "https://1.1.1.1/", "events": ["ORDER_PLACED"]}}
        )
    ) == [("UNAUTHENTICATED", None)]
    assert await snapshot(db) == before
    forbidden = await hooks.query(LIST, token=customer)
    assert forbidden["data"] is None
    assert _codes(forbidden) == [("FORBIDDEN", None)]
    assert _codes(await hooks.query(LIST)) == [("UNAUTHENTICATED", None)]
    assert _codes(await hooks.query(DELETE, {"id": "V2ViaG9vazox"}, token=customer)) == [
        ("FORBIDDEN", None)
    ]


REFUSED_URLS = (
    "not a url",
    "ftp://1.1.1.1/hook",
    "http://1.1.1.1/hook",  # https only
    "https://user:pw@1.1.1.1/hook",
    "https://127.0.0.1/hook",
    "https://localhost/hook",
    "https://10.1.2.3/hook",
    "https://192.168.0.1/hook",
    "https://169.254.169.254/latest/meta-data",
    "https://[::1]/hook",
    "https://[::ffff:127.0.0.1]/hook",
    "https://0.0.0.0/hook",
    "https://224.0.0.1/hook",
    "https://no-such-host.invalid/hook",
)


async def test_a_url_that_may_not_be_called_is_bad_user_input_on_input_url(
    hooks: Api, db: Database
) -> None:
    admin = await hooks.token("admin@example.com", role="admin")
    before = await snapshot(db)
    for url in REFUSED_URLS:
        body = await _create(hooks, admin, url)
        assert body["data"] is None, url
        assert _codes(body) == [("BAD_USER_INPUT", "input.url")], (url, body)
    assert await snapshot(db) == before


@pytest.mark.parametrize("events", [[], ["ORDER_PLACED", "ORDER_PLACED"]])
async def test_an_empty_or_repeated_event_list_is_bad_user_input(
    hooks: Api, events: list[str]
) -> None:
    admin = await hooks.token("admin@example.com", role="admin")
    body = await _create(hooks, admin, events=events)
    assert _codes(body) == [("BAD_USER_INPUT", "input.events")]


async def test_the_allowances_let_a_local_http_receiver_in(db: Database) -> None:
    env = webhook_env()
    try:
        async with serve(db, **env) as api:
            admin = await api.token("admin@example.com", role="admin")
            body = await _create(api, admin, "http://127.0.0.1:9/hook")
            assert "errors" not in body, body
    finally:
        await delete_queue(env["REDIS_URL"], env["WEBHOOK_QUEUE"])


async def test_without_a_secret_key_webhooks_are_refused_naming_the_setting(
    db: Database,
) -> None:
    env = webhook_env()
    del env["WEBHOOK_SECRET_KEY"]
    async with serve(db, **env) as api:
        admin = await api.token("admin@example.com", role="admin")
        body = await _create(api, admin)
    assert _codes(body) == [("SERVICE_UNAVAILABLE", None)]
    assert "WEBHOOK_SECRET_KEY" in body["errors"][0]["message"]


async def test_deleting_drops_the_webhook_and_its_deliveries_unknown_is_not_found(
    hooks: Api, db: Database
) -> None:
    admin = await hooks.token("admin@example.com", role="admin")
    created = (await _create(hooks, admin))["data"]["createWebhook"]["webhook"]
    await _add_delivery(db, status="pending")
    assert (await hooks.data(DELETE, {"id": created["id"]}, token=admin)) == {
        "deleteWebhook": created["id"]
    }
    async with db.sessionmaker() as session:
        assert (await session.scalars(select(WebhookDelivery.id))).all() == []
    again = await hooks.query(DELETE, {"id": created["id"]}, token=admin)
    assert _codes(again) == [("NOT_FOUND", "id")]


async def _add_delivery(db: Database, *, status: str, event_id: str = "e1") -> int:
    async with db.sessionmaker.begin() as session:
        webhook_id = (await session.scalars(select(Webhook.id))).first()
        delivery = WebhookDelivery(
            webhook_id=webhook_id,
            event_id=event_id,
            event_type="order.placed",
            message_id=f"msg_{event_id}",
            body="{}",
            status=status,
            attempts=3 if status == "failed" else 0,
            max_attempts=3,
        )
        session.add(delivery)
        await session.flush()
        return delivery.id


async def test_deliveries_are_listed_newest_first_filtered_by_status_and_reach_their_webhook(
    hooks: Api, db: Database
) -> None:
    admin = await hooks.token("admin@example.com", role="admin")
    created = (await _create(hooks, admin))["data"]["createWebhook"]["webhook"]
    await _add_delivery(db, status="pending", event_id="e1")
    await _add_delivery(db, status="failed", event_id="e2")
    everything = (await hooks.data(LIST, token=admin))["webhooks"]["nodes"][0]["deliveries"]
    assert everything["totalCount"] == 2
    assert [d["messageId"] for d in everything["nodes"]] == ["msg_e2", "msg_e1"]
    assert {d["webhook"]["id"] for d in everything["nodes"]} == {created["id"]}
    failed = (await hooks.data(LIST, {"status": "FAILED"}, token=admin))["webhooks"]["nodes"][0]
    assert [(d["status"], d["attempts"]) for d in failed["deliveries"]["nodes"]] == [("FAILED", 3)]
    node = await hooks.data(
        "query($id: ID!) { node(id: $id) { ... on WebhookDelivery { messageId event } } }",
        {"id": everything["nodes"][0]["id"]},
        token=admin,
    )
    assert node == {"node": {"messageId": "msg_e2", "event": "ORDER_PLACED"}}
    customer = await hooks.token("c@example.com")
    hidden = await hooks.data(
        "query($id: ID!) { node(id: $id) { id } }", {"id": created["id"]}, token=customer
    )
    assert hidden == {"node": None}


async def test_deliveries_of_many_webhooks_cost_the_statements_of_one(
    hooks: Api, db: Database
) -> None:
    """No N+1: every webhook's deliveries page and totalCount come from one statement
    each, whatever the number of webhooks listed."""
    admin = await hooks.token("admin@example.com", role="admin")

    async def listing_statements() -> tuple[int, list[int]]:
        await hooks.data(LIST, token=admin)  # token lookup and first-use reads
        hooks.statements.clear()
        listed = (await hooks.data(LIST, token=admin))["webhooks"]["nodes"]
        return len(hooks.statements), [w["deliveries"]["totalCount"] for w in listed]

    await _create(hooks, admin)
    await _add_delivery(db, status="pending", event_id="a1")
    one, counts = await listing_statements()
    assert counts == [1]
    for n in (2, 3):
        await _create(hooks, admin, url=f"https://1.1.1.{n}/hook")
    async with db.sessionmaker.begin() as session:
        for index, webhook_id in enumerate(await session.scalars(select(Webhook.id))):
            for k in range(index + 1):
                session.add(
                    WebhookDelivery(
                        webhook_id=webhook_id,
                        event_id=f"b{index}-{k}",
                        event_type="order.placed",
                        message_id=f"msg_b{index}-{k}",
                        body="{}",
                        status="pending",
                        attempts=0,
                        max_attempts=3,
                    )
                )
    three, counts = await listing_statements()
    assert sorted(counts) == [2, 2, 3]
    assert three == one


async def test_redelivering_a_failed_delivery_keeps_its_message_id_and_refreshes_its_budget(
    hooks: Api, db: Database
) -> None:
    admin = await hooks.token("admin@example.com", role="admin")
    await _create(hooks, admin)
    failed = await _add_delivery(db, status="failed", event_id="e1")
    pending = await _add_delivery(db, status="pending", event_id="e2")
    listed = (await hooks.data(LIST, token=admin))["webhooks"]["nodes"][0]["deliveries"]["nodes"]
    ids = {d["messageId"]: d["id"] for d in listed}
    again = await hooks.data(REDELIVER, {"id": ids["msg_e1"]}, token=admin)
    assert again["redeliverWebhookDelivery"] == {
        "id": ids["msg_e1"],
        "status": "PENDING",
        "messageId": "msg_e1",
    }
    async with db.sessionmaker() as session:
        row = await session.get(WebhookDelivery, failed)
    # A fresh budget: WEBHOOK_MAX_ATTEMPTS (8 by default) attempts beyond those made.
    assert row is not None
    assert (row.attempts, row.max_attempts) == (3, 3 + 8)
    not_failed = await hooks.query(REDELIVER, {"id": ids["msg_e2"]}, token=admin)
    assert _codes(not_failed) == [("BAD_USER_INPUT", "id")]
    async with db.sessionmaker.begin() as session:
        await session.execute(update(WebhookDelivery).values(status="failed"))
    missing = await hooks.query(REDELIVER, {"id": "V2ViaG9va0RlbGl2ZXJ5Ojk5OQ"}, token=admin)
    assert _codes(missing) == [("NOT_FOUND", "id")]
    assert pending
