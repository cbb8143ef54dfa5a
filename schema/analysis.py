"""The analysis of a document, kept once: one bounded LRU of documents and all that is
derived from them.

A document's entry is its `Document`: the parsed AST, its SHA-256, its fragment map
(built once and read by the limits, the cost compiler and the cache-policy walk),
the outcome of validation, of the document limits and of the literal check, and the
plans compiled from it — a cost plan and a cache-policy plan per operation name,
each built the first time it is asked for. `DocumentCache` is the one bounded cache
of those entries, keyed by the document's text: a lookup by text costs one string
hash, a lookup by SHA-256 a digest per request; the SHA-256 is computed once, on a
miss. A text that does not parse
is kept too, as its refusal, so neither a bad document nor an invalid one is
parsed or validated twice.

Plans are keyed by their owner (the `CostAnalysis` or `CachePolicies` that built
them) and the operation name: two analyses with different tables never share a plan.

The limits, the cost compiler and the cache-policy walk share the fragment map but
stay three walks: each runs once per document (or operation) and never on a hit, so
merging them would save microseconds per new document while binding three sets of
rules into one traversal (the cost walk memoises fragments per page size and keeps
variants per concrete type; the policy walk skips mutations and flattens everything).

Example:
    executor = Executor(schema, cache_size=1000)  # holds its DocumentCache: executor.documents
    document = executor.parse(text)  # the same Document for the same text, until evicted
    executor.validate(document)  # validated once; an invalid document stays invalid
    costs.price(document, operation, variables)  # plan compiled once, kept in document.plans
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from cachetools import LRUCache
from graphql import (
    DocumentNode,
    FragmentDefinitionNode,
    GraphQLError,
    OperationDefinitionNode,
)

from schema.errors import GRAPHQL_VALIDATION_FAILED
from schema.limits import LimitViolation

MAX_CACHED_DOCUMENTS = 1000


class RequestError(Exception):
    """The request failed before execution: nothing ran."""

    def __init__(self, code: str, errors: list[GraphQLError]) -> None:
        super().__init__(errors[0].message if errors else code)
        self.code = code
        self.errors = errors


@dataclass(slots=True)
class Document:
    """A parsed document, identified by the SHA-256 of its text, with its analysis.

    Validation, the document limits and the check of its literals run once per
    document; their outcome is kept here, as are the plans compiled from it.
    """

    ast: DocumentNode
    sha256: str
    validation_errors: list[GraphQLError] | None = None
    limit_violation: LimitViolation | None = None
    literal_error: GraphQLError | None = None
    fragments: dict[str, FragmentDefinitionNode] = field(init=False, repr=False, compare=False)
    plans: dict[tuple[object, str | None], object] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )
    _operations: dict[str | None, OperationDefinitionNode] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        self.fragments = {}
        operations: list[OperationDefinitionNode] = []
        for definition in self.ast.definitions:
            if isinstance(definition, FragmentDefinitionNode):
                self.fragments[definition.name.value] = definition
            elif isinstance(definition, OperationDefinitionNode):
                operations.append(definition)
        # First of a name wins, as the linear search did (validation refuses duplicates).
        self._operations = {}
        for operation in reversed(operations):
            if operation.name is not None:
                self._operations[operation.name.value] = operation
        if len(operations) == 1:
            self._operations[None] = operations[0]

    def operation(self, name: str | None) -> OperationDefinitionNode:
        found = self._operations.get(name)
        if found is not None:
            return found
        if name is None:
            raise RequestError(
                GRAPHQL_VALIDATION_FAILED,
                [
                    GraphQLError(
                        "Must provide operation name if query contains multiple operations."
                    )
                ],
            )
        raise RequestError(
            GRAPHQL_VALIDATION_FAILED, [GraphQLError(f"Unknown operation named '{name}'.")]
        )


@dataclass(frozen=True, slots=True)
class Refusal:
    """A text that did not parse: the error to answer with each time it is sent."""

    code: str
    errors: Sequence[GraphQLError]

    def error(self) -> RequestError:
        # A new exception each time: re-raising one instance would grow its traceback.
        return RequestError(self.code, list(self.errors))


class DocumentCache:
    """The bounded LRU of documents by text: a `Document`, or the `Refusal` of a text
    that did not parse. One per executor (validation depends on its rules and
    limits); everything derived from a document lives in its entry and is evicted
    with it."""

    def __init__(self, maxsize: int = MAX_CACHED_DOCUMENTS) -> None:
        self._entries: LRUCache[str, Document | Refusal] = LRUCache(maxsize=maxsize)

    @property
    def maxsize(self) -> int:
        return int(self._entries.maxsize)

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, text: str) -> Document | Refusal | None:
        """The entry of `text`, now the most recently used; None when it has none."""
        try:
            return self._entries[text]
        except KeyError:
            return None

    def put(self, text: str, entry: Document | Refusal) -> None:
        """Keeps `entry` for `text`, evicting the least recently used beyond `maxsize`."""
        if self._entries.maxsize > 0:  # cachetools refuses any item when maxsize is 0
            self._entries[text] = entry
