"""What one request was, for its log line: filled while it runs, read when it ends.

`RequestLogMiddleware` (server/observability/request_log.py) creates one
`RequestFacts` per HTTP request and holds it in a context variable, so that
code without the request at hand (a SQLAlchemy event, a logging filter) finds
it too; the GraphQL layer fills in what only it knows through
`request_facts(request)`.

Example:
    facts = request_facts(request)
    facts.operation(operation, document.sha256)  # type, name and document hash
    facts.charged(client="user:42", bill=bill)  # who pays, and the bill read at the end
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from graphql import OperationDefinitionNode
    from starlette.requests import Request

_FACTS_KEY = "request_facts"


class Charge(Protocol):
    """What the log needs of a rate-limit bill (server/ratelimit/throttle.py's `Bill`)."""

    requested: int
    actual: int

    @property
    def refused(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class Operation:
    kind: str  # query, mutation or subscription
    name: str  # empty for an anonymous operation
    document_hash: str


@dataclass(slots=True)
class RequestFacts:
    """One request's facts. Counters are plain ints: one event loop writes them."""

    request_id: str = ""
    trace_id: str = ""
    sql_statements: int = 0
    client_id: str = ""
    cache_result: str = ""
    operations: list[Operation] = field(default_factory=list)
    bills: list[Charge] = field(default_factory=list)

    def operation(self, node: OperationDefinitionNode, document_hash: str) -> None:
        """The operation about to run (once per operation of a batch)."""
        name = node.name.value if node.name is not None else ""
        self.operations.append(Operation(node.operation.value, name, document_hash))

    def charged(self, *, client: str, bill: Charge) -> None:
        """Who the operation is charged to (`user:<id>` or `ip:<address>`, never a token)
        and its bill, whose actual cost is read once the answer is sent."""
        self.client_id = client
        self.bills.append(bill)

    def cached(self, result: str) -> None:
        """What the result cache did: HIT, STALE, MISS or BYPASS."""
        self.cache_result = result


_current: contextvars.ContextVar[RequestFacts | None] = contextvars.ContextVar(
    "storefront_request_facts", default=None
)


def current_facts() -> RequestFacts | None:
    """The facts of the request running in this context, if any."""
    return _current.get()


def bind_facts(facts: RequestFacts) -> contextvars.Token[RequestFacts | None]:
    return _current.set(facts)


def unbind_facts(token: contextvars.Token[RequestFacts | None]) -> None:
    _current.reset(token)


def attach_facts(scope_state: dict[str, object], facts: RequestFacts) -> None:
    scope_state[_FACTS_KEY] = facts


def request_facts(request: Request) -> RequestFacts:
    """The facts of `request`; a detached, unlogged one when no middleware made one."""
    facts = request.scope.get("state", {}).get(_FACTS_KEY)
    return facts if isinstance(facts, RequestFacts) else RequestFacts()
