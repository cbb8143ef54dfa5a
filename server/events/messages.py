"""An event on the wire (the Redis channel): JSON, camelCase, one message per event."""

from __future__ import annotations

from datetime import datetime

import orjson

from resolvers.events import Event


def encode(event: Event) -> bytes:
    return orjson.dumps(
        {
            "eventId": event.event_id,
            "type": event.type,
            "entityId": event.entity_id,
            "data": event.data,
            "tags": sorted(event.tags),
            "requestId": event.request_id,
            "occurredAt": event.occurred_at.isoformat(),
        }
    )


def decode(message: bytes | str) -> Event:
    """The event of a message; ValueError (or KeyError) when it is not one."""
    body = orjson.loads(message)
    return Event(
        event_id=str(body["eventId"]),
        type=str(body["type"]),
        entity_id=str(body["entityId"]),
        data=dict(body["data"]),
        tags=frozenset(body["tags"]),
        request_id=body.get("requestId"),
        occurred_at=datetime.fromisoformat(body["occurredAt"]),
    )
