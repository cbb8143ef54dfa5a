"""The double order of issue 9: the database connection dies right after COMMIT.

A real `storefront serve` process talks to PostgreSQL through a proxy that
loses one COMMIT's reply (tests/commit_dropping_proxy.py). The order is
committed, yet `placeOrder` answers with an error. Retried without a key, the
client orders twice; retried with the same Idempotency-Key, it gets the
committed order and nothing is written again.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, make_url, select

from models import IdempotencyKey, Order
from resolvers.tokens import create_token
from schema.global_id import from_global_id, to_global_id
from tests.commit_dropping_proxy import CommitDroppingProxy
from tests.conftest import Database
from tests.factories import Factory
from tests.live_server import live_server

PLACE = "mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { id totalCents } }"


async def _orders(db: Database) -> list[int]:
    async with db.sessionmaker() as session:
        return list((await session.execute(select(Order.id).order_by(Order.id))).scalars())


async def test_a_lost_commit_reply_is_recovered_by_retrying_with_the_same_key(
    db: Database, factory: Factory
) -> None:
    if db.backend != "postgresql":
        pytest.skip("the proxy speaks PostgreSQL's wire protocol")
    lamp = await factory.product(price_cents=1500)
    token = (await create_token(sessionmaker=db.sessionmaker, email="c@example.com")).token
    variables = {"input": {"lines": [{"productId": to_global_id("Product", lamp), "quantity": 2}]}}
    url = make_url(db.url)
    assert url.host is not None

    with CommitDroppingProxy(url.host, url.port or 5432) as proxy:
        proxied = url.set(host="127.0.0.1", port=proxy.port, query={"ssl": "disable"})
        # No relay in the server: its COMMITs would go through the proxy too.
        env = {
            "DATABASE_URL": proxied.render_as_string(hide_password=False),
            "EVENTS_RELAY": "worker",
        }
        with live_server(env) as server:
            async with httpx.AsyncClient(timeout=30) as client:

                async def place(key: str | None) -> httpx.Response:
                    headers = {"Authorization": f"Bearer {token}"}
                    if key is not None:
                        headers["Idempotency-Key"] = key
                    body = {"query": PLACE, "variables": variables}
                    return await client.post(server.graphql, json=body, headers=headers)

                # Without a key: the failed answer hides a committed order, and the
                # client's retry places a second one.
                proxy.arm()
                failed = await place(None)
                assert proxy.dropped == 1
                assert _placed(failed) is None
                assert len(await _orders(db)) == 1
                await place(None)
                assert len(await _orders(db)) == 2

                # With a key: the retry answers with the committed order.
                proxy.arm()
                failed = await place("order-42")
                assert proxy.dropped == 2
                assert _placed(failed) is None
                committed = (await _orders(db))[-1]
                assert len(await _orders(db)) == 3

                retried = await place("order-42")
                assert retried.status_code == 200, retried.text
                assert retried.headers["idempotent-replayed"] == "true"
                order = _placed(retried)
                assert order is not None
                assert from_global_id(order["id"], field="id") == ("Order", committed)
                assert order["totalCents"] == 3000

                again = await place("order-42")  # now the stored answer
                assert again.headers["idempotent-replayed"] == "true"
                assert _placed(again) == order
                assert len(await _orders(db)) == 3
    async with db.sessionmaker() as session:
        keys = await session.scalar(select(func.count()).select_from(IdempotencyKey))
    assert keys == 1


def _placed(response: httpx.Response) -> dict[str, Any] | None:
    """The order a placeOrder answer carries; None when it is an error answer."""
    body = response.json()
    if body.get("errors"):
        assert (body.get("data") or {}).get("placeOrder") is None
        return None
    return dict(body["data"]["placeOrder"])
