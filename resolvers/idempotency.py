"""Idempotent writes: the key is recorded in the write's own transaction.

A write given a `KeyedWrite` claims its key first thing in its transaction (a
row of user, key and request hash) and, once written, records on that row the
entity it wrote and the tags it changed; so a commit and its key cannot part.
Two requests racing with one key: the unique constraint on (user_id, key)
makes the second claim wait for the first transaction, then fail with
`KeyInUse` (when the first committed) before the second has written anything,
so the loser never sees a side effect of the winner (a taken sku, say).

A `KeyedWrite` with `replay` set stands for a write that committed earlier
under the same key: the write must not run again, the recorded entity is
answered instead.

Example:
    async with sessionmaker.begin() as session:
        await claim_key(idempotency, session)
        order = ...  # the write
        events = [order_event("order.placed", order, items, announce(...))]
        await record_events(session, events)
        await record_key(idempotency, session, field="placeOrder", result_id=order.id,
                         events=events)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import IdempotencyKey, utcnow
from resolvers.changes import Changes
from resolvers.errors import DomainError
from resolvers.events import Event, changes_of
from resolvers.validation import is_unique_violation

KEY_TTL = timedelta(hours=24)


class KeyInUse(DomainError):
    """Another request with the same key committed its write first (or is committing it)."""


@dataclass(frozen=True, slots=True)
class Replay:
    """What a committed keyed write recorded: the entity to answer with, the tags it changed
    and the ids of the events it recorded in the outbox."""

    field: str
    result_id: int
    changes: Changes
    event_ids: tuple[str, ...] = ()


@dataclass(slots=True)
class KeyedWrite:
    """One request's Idempotency-Key, handed to the write it guards."""

    user_id: int
    key: str
    request_hash: str
    replay: Replay | None = None
    done: bool = False
    """Set once the write committed (or its recorded result was answered)."""
    conflict: bool = False
    """Set when another request held the key: this write rolled back."""

    _row_id: int | None = None

    async def claim(self, session: AsyncSession) -> None:
        """Insert the key row; KeyInUse when another request holds the key."""
        try:
            self._row_id = (
                await session.execute(
                    insert(IdempotencyKey)
                    .values(
                        user_id=self.user_id,
                        key=self.key,
                        request_hash=self.request_hash,
                        created_at=utcnow(),
                    )
                    .returning(IdempotencyKey.id)
                )
            ).scalar_one()
        except IntegrityError as error:
            if not is_unique_violation(
                error,
                constraint="uq_idempotency_keys_user_id_key",
                columns="idempotency_keys.user_id, idempotency_keys.key",
            ):
                raise
            self.conflict = True
            raise KeyInUse(
                "Another request with this Idempotency-Key is in progress or just completed; "
                "retry to get its answer."
            ) from None

    async def record(
        self, session: AsyncSession, *, field: str, result_id: int, events: Sequence[Event]
    ) -> None:
        """Note on the claimed row what the write wrote, for replays."""
        assert self._row_id is not None, "record() before claim()"
        changes = changes_of(events)
        tags = {
            "entities": sorted(changes.entities),
            "lists": sorted(changes.lists),
            "events": [event.event_id for event in events],
        }
        await session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.id == self._row_id)
            .values(field=field, result_id=result_id, changes=orjson.dumps(tags).decode())
        )


async def claim_key(idempotency: KeyedWrite | None, session: AsyncSession) -> None:
    """First thing in a write's transaction: claim its key, if it has one."""
    if idempotency is not None:
        await idempotency.claim(session)


async def record_key(
    idempotency: KeyedWrite | None,
    session: AsyncSession,
    *,
    field: str,
    result_id: int,
    events: Sequence[Event],
) -> None:
    """Last thing in a write's transaction: what it wrote, on its claimed key."""
    if idempotency is not None:
        await idempotency.record(session, field=field, result_id=result_id, events=events)


@dataclass(frozen=True, slots=True)
class StoredKey:
    """A key row as found before a keyed request runs."""

    id: int
    request_hash: str
    replay: Replay
    response: str | None
    created_at: datetime

    def expired(self, now: datetime) -> bool:
        return self.created_at <= now - KEY_TTL


async def find_key(
    *, sessionmaker: async_sessionmaker[AsyncSession], user_id: int, key: str
) -> StoredKey | None:
    async with sessionmaker() as session:
        row = (
            await session.execute(
                select(
                    IdempotencyKey.id,
                    IdempotencyKey.request_hash,
                    IdempotencyKey.field,
                    IdempotencyKey.result_id,
                    IdempotencyKey.changes,
                    IdempotencyKey.response,
                    IdempotencyKey.created_at,
                ).where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
            )
        ).one_or_none()
    if row is None or row.field is None:
        return None  # (a claim is never committed without its record)
    tags = orjson.loads(row.changes)
    changes = Changes(frozenset(tags["entities"]), frozenset(tags["lists"]))
    return StoredKey(
        row.id,
        row.request_hash,
        Replay(row.field, row.result_id, changes, tuple(tags.get("events", ()))),
        row.response,
        row.created_at,
    )


async def forget_expired(
    *, sessionmaker: async_sessionmaker[AsyncSession], key_id: int, now: datetime
) -> None:
    """Delete the key row `key_id` if it expired, so its key may be used again."""
    async with sessionmaker.begin() as session:
        await session.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.id == key_id, IdempotencyKey.created_at <= now - KEY_TTL
            )
        )


async def store_response(
    *, sessionmaker: async_sessionmaker[AsyncSession], user_id: int, key: str, response: str
) -> None:
    """Keep the answer of a keyed write, for replays; the first answer stored stays."""
    async with sessionmaker.begin() as session:
        await session.execute(
            update(IdempotencyKey)
            .where(
                IdempotencyKey.user_id == user_id,
                IdempotencyKey.key == key,
                IdempotencyKey.response.is_(None),
            )
            .values(response=response)
        )


async def purge_expired(*, sessionmaker: async_sessionmaker[AsyncSession], now: datetime) -> int:
    """Delete every expired key row; how many went."""
    async with sessionmaker.begin() as session:
        result = await session.execute(
            delete(IdempotencyKey).where(IdempotencyKey.created_at <= now - KEY_TTL)
        )
    return int(result.rowcount)  # type: ignore[attr-defined]
