"""The `Idempotency-Key` header: a mutation retried with the same key runs once.

As Stripe does: the first request with a key runs its write and records the
key in the write's own transaction (resolvers/idempotency.py); a retry by the
same user with the same request within 24 h gets the recorded answer with
`Idempotent-Replayed: true` and writes nothing.

- The request is identified by a hash of the canonical document text (printed
  from its AST, so whitespace and comments do not count), the operation name
  and the coerced variables (keys sorted).
- The same key with another request: 400, IDEMPOTENCY_KEY_REUSED; nothing runs.
- The answer is stored after it was sent, so the client never waits for that
  commit. A retry whose first answer was never stored (the connection died
  after the commit, or the retry came first) is rebuilt: the document runs
  again in replay mode, the mutation field answering with the entity the
  write recorded.
- Two requests racing with one key: the unique key row lets one commit; the
  other rolls back and answers 409, IDEMPOTENCY_KEY_IN_PROGRESS, Retry-After 1.
- A key covers one mutation field: an operation with several is refused (400).
- A key on a query is ignored (reads are safe to retry); anonymous callers
  cannot write, so their key is ignored and the mutation fails as without one.
  A batch may not carry a key (400).
- A write that fails leaves no key (its transaction rolled back), so a
  corrected retry with the same key runs. An answer with errors is not stored:
  its retry is rebuilt from the recorded write.

Example:
    keyed = await begin_keyed_write(key, sessionmaker=sessionmaker, document=...,
                                    operation=..., variables=..., viewer=viewer)
    # None: no key; KeyedAnswer: send it; Keyed: run with Context(idempotency=keyed.write),
    # then `status, headers = keyed.finish(payload)`, and after the answer was sent
    # `keyed.then(bill.refund)` stores it (best effort) and refunds.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    print_ast,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import utcnow
from resolvers.idempotency import KeyedWrite, find_key, forget_expired, store_response
from resolvers.viewer import Viewer
from schema import Document, is_mutation
from schema.errors import BAD_USER_INPUT, IDEMPOTENCY_KEY_REUSED, error_payload
from server.cache.cached_response import with_extensions

logger = logging.getLogger("storefront.idempotency")

IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255


@dataclass(slots=True)
class KeyedAnswer:
    """An answer given without running anything: a refusal, or a stored answer."""

    body: bytes
    status: int
    headers: dict[str, str] = field(default_factory=dict)

    def content(self, extensions: Mapping[str, Any] | None) -> bytes:
        return with_extensions(self.body, extensions)


def _refusal(message: str, code: str = BAD_USER_INPUT) -> KeyedAnswer:
    payload = {"errors": [error_payload(message, code, header=IDEMPOTENCY_KEY_HEADER)]}
    return KeyedAnswer(orjson.dumps(payload), 400)


@dataclass(slots=True)
class Keyed:
    """A keyed mutation about to run (or be rebuilt); `write` goes into its Context."""

    write: KeyedWrite
    sessionmaker: async_sessionmaker[AsyncSession]
    answer: str | None = None

    def finish(self, payload: dict[str, Any]) -> tuple[int, dict[str, str]]:
        """The HTTP status and headers of the answer; a clean answer of a committed write
        is kept for `store`."""
        if self.write.conflict:
            return 409, {"Retry-After": "1"}
        if not self.write.done:
            return 200, {}
        if not payload.get("errors"):
            self.answer = orjson.dumps(payload).decode()
        return 200, {REPLAYED_HEADER: "true"} if self.write.replay is not None else {}

    def then(self, after: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
        """`after`, preceded by storing the answer: both run once the answer was sent, so
        the client does not wait for the stored answer's commit."""

        async def store_then() -> None:
            try:
                await self.store()
            finally:
                await after()

        return store_then

    async def store(self) -> None:
        """Keep the answer for replays; best effort (a retry without it is rebuilt)."""
        if self.answer is None:
            return
        try:
            await store_response(
                sessionmaker=self.sessionmaker,
                user_id=self.write.user_id,
                key=self.write.key,
                response=self.answer,
            )
        except Exception:
            logger.warning("could not store the answer of an idempotent write", exc_info=True)


def refuse_keyed_batch(*, has_key: bool) -> KeyedAnswer | None:
    """A refusal when a batch carries an Idempotency-Key: a key covers one operation."""
    if not has_key:
        return None
    return _refusal(f"A batch cannot carry an {IDEMPOTENCY_KEY_HEADER}; send its mutation alone.")


async def begin_keyed_write(
    key: str | None,
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    document: Document,
    operation: OperationDefinitionNode,
    variables: Mapping[str, Any],
    viewer: Viewer,
) -> Keyed | KeyedAnswer | None:
    """What an `Idempotency-Key` makes of this operation: None when it has none (or it
    does not apply), a KeyedAnswer to send as is, or a Keyed write to run.

    `key` is the request's Idempotency-Key, None when it has none."""
    if key is None or not is_mutation(operation):
        return None
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not all(" " <= c <= "~" for c in key):
        return _refusal(
            f"{IDEMPOTENCY_KEY_HEADER} must be 1 to {MAX_KEY_LENGTH} printable ASCII characters."
        )
    user = viewer.user
    if user is None:
        return None
    fields = _root_fields(operation.selection_set, _fragments(document))
    if len(fields) > 1:
        return _refusal(
            f"An {IDEMPOTENCY_KEY_HEADER} covers one mutation field; this operation has "
            f"{len(fields)}. Send them separately, each with its own key."
        )
    fingerprint = request_hash(document, operation, variables)
    stored = await find_key(sessionmaker=sessionmaker, user_id=user.id, key=key)
    now = utcnow()
    if stored is not None and stored.expired(now):
        await forget_expired(sessionmaker=sessionmaker, key_id=stored.id, now=now)
        stored = None
    if stored is None:
        return Keyed(KeyedWrite(user.id, key, fingerprint), sessionmaker)
    if stored.request_hash != fingerprint:
        return _refusal(
            f"This {IDEMPOTENCY_KEY_HEADER} was already used for a different request; "
            "use a new key for a new request.",
            IDEMPOTENCY_KEY_REUSED,
        )
    if stored.response is not None:
        return KeyedAnswer(stored.response.encode(), 200, {REPLAYED_HEADER: "true"})
    return Keyed(KeyedWrite(user.id, key, fingerprint, replay=stored.replay), sessionmaker)


def request_hash(
    document: Document, operation: OperationDefinitionNode, variables: Mapping[str, Any]
) -> str:
    """SHA-256 of the canonical document, the operation's name and its coerced variables."""
    name = operation.name.value if operation.name is not None else ""
    encoded = orjson.dumps(
        variables, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=str
    )
    digest = hashlib.sha256(print_ast(document.ast).encode())
    digest.update(b"\0" + name.encode() + b"\0" + encoded)
    return digest.hexdigest()


def _fragments(document: Document) -> dict[str, FragmentDefinitionNode]:
    return {
        d.name.value: d for d in document.ast.definitions if isinstance(d, FragmentDefinitionNode)
    }


def _root_fields(
    selection_set: SelectionSetNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    seen: frozenset[str] = frozenset(),
) -> set[str]:
    """The response keys of the root fields (fragments expanded, `__typename` aside).

    @skip/@include are not evaluated: a field that may run counts.
    """
    keys: set[str] = set()
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            if selection.name.value != "__typename":
                keys.add((selection.alias or selection.name).value)
        elif isinstance(selection, InlineFragmentNode):
            keys |= _root_fields(selection.selection_set, fragments, seen)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = fragments.get(name)
            if fragment is not None and name not in seen:
                keys |= _root_fields(fragment.selection_set, fragments, seen | {name})
    return keys
