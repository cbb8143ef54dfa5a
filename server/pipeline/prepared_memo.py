"""What `prepare` found for a request's exact bytes, remembered: a repeated query skips
its checks.

Every check `prepare` runs before it asks for the viewer is a pure function of the
request's bytes (the document text, the operation name, the variables as sent) and of
this process's schema and settings: the document's analysis, the operation, the
coerced variables and the price. A client repeating a request (a dashboard polled, a
page reloaded) sends the same bytes, so the memo keys them by those bytes and skips
parsing the variables, coercing them and pricing the operation again; on a cached hit
that was most of what the pipeline did.

Only what cannot change is remembered: plain queries (no persisted-query extension or
document id, whose lookups and audit counts are per request), never mutations, never a
request that failed a check. Bodies over `MAX_SOURCE_BYTES` are not kept, and the
number of entries is bounded, so the memo holds at most `maxsize * MAX_SOURCE_BYTES`
bytes of keys besides the shared documents.

Example:
    memo = PreparedMemo()
    checked = memo.get(source)  # None the first time
    memo.put(source, Checked(document, operation, variables, price, graphql_request))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cachetools import LRUCache

from server.cache.cached_response import ResponseKey

if TYPE_CHECKING:
    from graphql import OperationDefinitionNode

    from schema import Document
    from schema.cost import Price
    from server.pipeline.request import GraphQLRequest

MAX_SOURCE_BYTES = 8 * 1024
MAX_ENTRIES = 2048


@dataclass(frozen=True, slots=True)
class Checked:
    """The viewer-independent part of a `Prepared`, and the request it was read from;
    `variables` are shared: read only. `key` is the answer's in the result cache."""

    document: Document
    operation: OperationDefinitionNode
    variables: dict[str, Any]
    price: Price
    graphql: GraphQLRequest
    key: ResponseKey = field(init=False)

    def __post_init__(self) -> None:
        key = ResponseKey.of(self.document.sha256, self.variables, self.graphql.operation_name)
        object.__setattr__(self, "key", key)  # frozen: set once, here


class PreparedMemo:
    """A bounded LRU from request bytes to what `prepare` checked for them."""

    __slots__ = ("_entries",)

    def __init__(self, maxsize: int = MAX_ENTRIES) -> None:
        self._entries: LRUCache[bytes, Checked] = LRUCache(maxsize=maxsize)

    def get(self, source: bytes | None) -> Checked | None:
        if source is None:
            return None
        return self._entries.get(source)

    def put(self, source: bytes | None, checked: Checked) -> None:
        if source is not None and len(source) <= MAX_SOURCE_BYTES and self._entries.maxsize:
            self._entries[source] = checked

    def __len__(self) -> int:
        return len(self._entries)
