"""What goes into the pipeline and what comes out, in no transport's terms.

A transport (HTTP today; later WebSocket, SSE, webhooks' payload rendering)
builds an `OperationRequest` and turns the `Result` back into its own terms.
Statuses are GraphQL-over-HTTP's, the vocabulary the spec gives every outcome;
a transport without statuses reads `payload` and ignores them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:  # annotations only: server.persisted.queries imports GraphQLRequest
    from graphql import OperationDefinitionNode

    from resolvers.viewer import Viewer
    from schema import Document
    from schema.cost import Price
    from server.cache.cached_response import Served
    from server.observability.request_facts import Charge, RequestFacts
    from server.persisted.queries import ClientInfo


@dataclass(frozen=True, slots=True)
class GraphQLRequest:
    """The operation a client asks for: its text, or a persisted hash or id, and so on."""

    query: str | None
    operation_name: str | None
    variables: dict[str, Any] | None
    extensions: dict[str, Any] | None
    document_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class OperationRequest:
    """One operation to run, with the facts of its transport as plain values.

    `viewer` authenticates when first awaited (raising Unauthenticated or
    AuthThrottled). `client_ip` is the address the cost is charged to when no
    user signed in.
    """

    graphql: GraphQLRequest
    viewer: Callable[[], Awaitable[Viewer]]
    client_ip: str
    client: ClientInfo
    allow_mutations: bool = True
    """False over GET: a mutation is refused (405) before it is charged."""
    dry_run: bool = False
    """Price the operation and report the bucket; run nothing."""
    idempotency_key: str | None = None
    fresh: bool = False
    """`Cache-Control: no-cache`: answer from a fresh execution, not the result cache."""
    request_id: str | None = None
    facts: RequestFacts | None = None
    """What the request log will say of this operation (server/observability/), filled
    as it runs: its type and name, who was charged, what the result cache did."""
    read_after: str | None = None
    """The client's read-after token (server/replicas/read_after.py): a recent write of
    its own that its reads must see."""
    source: bytes | None = None
    """The transport's bytes this operation alone was read from (a POST body, a GET
    query string), when they say everything `graphql` does: what `prepare` checked for
    them is remembered (server/pipeline/prepared_memo.py)."""


@dataclass(slots=True)
class Prepared:
    """An operation that passed every check before execution, priced."""

    request: OperationRequest
    document: Document
    operation: OperationDefinitionNode
    variables: dict[str, Any]
    viewer: Viewer
    price: Price


@dataclass(slots=True)
class Result:
    """One operation's answer, and what its transport needs to say about it."""

    payload: dict[str, Any]
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    """Facts for the transport's headers: RateLimit-*, Retry-After, Allow, ..."""
    after: Callable[[], Awaitable[None]] | None = None
    """Work once the answer was sent (a refund, storing an idempotent answer)."""
    body: bytes | None = None
    """The payload already serialized (a cached answer), when it is."""
    served: Served | None = None
    """Answered through the result cache: what HTTP caching headers describe ..."""
    served_at: float = 0.0
    """... as of this time of the cache's clock."""
    bypassed_cache: bool = False
    """Executed past an enabled result cache (a mutation): nothing may keep it."""
    validation_failed: bool = False
    """Well-formed but invalid: 400, except that `application/json` keeps 200."""
    operation: OperationDefinitionNode | None = None
    """The operation answered, when its document could be read (for the metrics)."""
    bill: Charge | None = None
    """The operation's charge, once it was charged (refused, or what it cost)."""

    def content(self) -> bytes:
        return self.body if self.body is not None else orjson.dumps(self.payload)
