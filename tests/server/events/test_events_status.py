"""`storefront events status`: the outbox's depth, the age of its oldest unpublished
event, published rows still kept, unpublished events by type, and deliveries by
status; as lines, and as one JSON object with `--json`. Both backends."""

from __future__ import annotations

import json
from datetime import timedelta

from models import OutboxEvent, Webhook, WebhookDelivery, utcnow
from tests.conftest import Database
from tests.server.cli_support import acli


async def _fill(db: Database) -> None:
    now = utcnow()
    events = [
        ("a", "order.placed", 90, False),
        ("b", "order.placed", 30, False),
        ("c", "review.added", 10, False),
        ("d", "order.placed", 600, True),
    ]
    async with db.sessionmaker.begin() as session:
        session.add_all(
            OutboxEvent(
                event_id=event_id,
                type=type_,
                entity_id="T3JkZXI6MQ",
                payload={},
                tags=[],
                created_at=now - timedelta(seconds=age),
                published_at=now if published else None,
            )
            for event_id, type_, age, published in events
        )
        hook = Webhook(
            url="https://example.com/h", events=["order.placed"], secret="x", active=True
        )
        session.add(hook)
        await session.flush()
        session.add_all(
            WebhookDelivery(
                webhook_id=hook.id,
                event_id=f"e{i}",
                event_type="order.placed",
                message_id=f"msg_{i}",
                body="{}",
                status=status,
                attempts=0,
                max_attempts=8,
                created_at=now,
                next_attempt_at=now,
            )
            for i, status in enumerate(["pending", "delivered", "delivered", "failed"])
        )


async def test_status_reports_the_outbox_lag_and_deliveries_by_status(db: Database) -> None:
    await _fill(db)
    as_json = await acli("events", "status", "--json", env={"DATABASE_URL": db.url})
    as_lines = await acli("events", "status", env={"DATABASE_URL": db.url})

    assert as_json.returncode == 0, as_json.stderr
    report = json.loads(as_json.stdout)
    outbox = report["outbox"]
    assert outbox["unpublished"] == 3
    assert 90 <= outbox["oldest_unpublished_age_seconds"] < 150
    assert outbox["published_kept"] == 1
    assert outbox["unpublished_by_type"] == {"order.placed": 2, "review.added": 1}
    assert report["deliveries"] == {"pending": 1, "delivered": 2, "failed": 1}
    assert as_lines.returncode == 0, as_lines.stderr
    lines = as_lines.stdout.splitlines()
    assert lines[0] == "outbox:"
    assert "  unpublished: 3" in lines
    assert "deliveries:" in lines
    assert "  failed: 1" in lines


async def test_an_empty_outbox_has_no_oldest_age(db: Database) -> None:
    result = await acli("events", "status", "--json", env={"DATABASE_URL": db.url})
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["outbox"]["unpublished"] == 0
    assert report["outbox"]["oldest_unpublished_age_seconds"] is None
    assert report["deliveries"] == {"pending": 0, "delivered": 0, "failed": 0}
