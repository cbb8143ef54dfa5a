"""Document limits: depth, aliases and directives of every operation, checked before execution.

Each operation is measured with its fragments expanded: a fragment spread ten
times counts ten times, and a chain of fragments nests as deep as it reads.
Fragments are measured once each (memoised), so a document whose fragments
spread each other twice per level still takes linear time. Introspection
fields (`__schema`, `__type`, `__typename`) do not count toward depth:
graphql-core's MaxIntrospectionDepthRule bounds those, and GraphiQL's own
introspection query is deeper than any sane depth limit. The token limit is
enforced by the parser itself (`parse(..., max_lexical_tokens=...)`), which
stops reading the document as soon as it is exceeded.

Example:
    limits = DocumentLimits(max_depth=10, max_aliases=30, max_directives=50, max_tokens=2000)
    violation = check_limits(parse("{ categories { name } }"), limits)  # None: within limits
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)

from schema.errors import QUERY_TOO_COMPLEX, QUERY_TOO_DEEP


@dataclass(frozen=True, slots=True)
class DocumentLimits:
    """The largest document accepted; every limit is inclusive (n passes, n + 1 fails)."""

    max_depth: int = 10
    max_aliases: int = 30
    max_directives: int = 50
    max_tokens: int = 2000


@dataclass(frozen=True, slots=True)
class LimitViolation:
    """A document over a limit: the error to answer with, and its code."""

    code: str
    error: GraphQLError


@dataclass(frozen=True, slots=True)
class _Size:
    depth: int
    aliases: int
    directives: int


class _Measure:
    """Measures selection sets, each fragment once."""

    def __init__(self, fragments: Mapping[str, FragmentDefinitionNode]) -> None:
        self.fragments = fragments
        self.measured: dict[str, _Size] = {}

    def selection_set(self, selection_set: SelectionSetNode | None) -> _Size:
        depth = aliases = directives = 0
        if selection_set is None:
            return _Size(0, 0, 0)
        for selection in selection_set.selections:
            directives += len(selection.directives or ())
            if isinstance(selection, FieldNode):
                below = self.selection_set(selection.selection_set)
                if not selection.name.value.startswith("__"):
                    depth = max(depth, 1 + below.depth)
                aliases += below.aliases + (selection.alias is not None)
                directives += below.directives
                continue
            if isinstance(selection, InlineFragmentNode):
                below = self.selection_set(selection.selection_set)
            else:
                assert isinstance(selection, FragmentSpreadNode)
                below = self.fragment(selection.name.value)
            depth = max(depth, below.depth)
            aliases += below.aliases
            directives += below.directives
        return _Size(depth, aliases, directives)

    def fragment(self, name: str) -> _Size:
        size = self.measured.get(name)
        if size is None:
            definition = self.fragments[name]
            inner = self.selection_set(definition.selection_set)
            own = len(definition.directives or ())
            size = _Size(inner.depth, inner.aliases, inner.directives + own)
            self.measured[name] = size
        return size


def check_limits(
    document: DocumentNode,
    limits: DocumentLimits,
    *,
    fragments: Mapping[str, FragmentDefinitionNode] | None = None,
) -> LimitViolation | None:
    """The first limit a (valid) document's operations exceed, or None.

    `fragments` is the document's fragment map when the caller has it already
    (`Document.fragments`); else it is built here.
    """
    if fragments is None:
        fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
    measure = _Measure(fragments)
    for operation in document.definitions:
        if not isinstance(operation, OperationDefinitionNode):
            continue
        try:
            size = measure.selection_set(operation.selection_set)
        except RecursionError:
            return _violation(QUERY_TOO_DEEP, "depth", limits.max_depth, node=operation)
        directives = size.directives + len(operation.directives or ())
        directives += sum(len(v.directives or ()) for v in operation.variable_definitions or ())
        if size.depth > limits.max_depth:
            return _violation(QUERY_TOO_DEEP, "depth", limits.max_depth, size.depth, node=operation)
        if size.aliases > limits.max_aliases:
            return _violation(
                QUERY_TOO_COMPLEX, "aliases", limits.max_aliases, size.aliases, node=operation
            )
        if directives > limits.max_directives:
            return _violation(
                QUERY_TOO_COMPLEX, "directives", limits.max_directives, directives, node=operation
            )
    return None


def parser_limit_violation(error: GraphQLError, limits: DocumentLimits) -> LimitViolation | None:
    """The parser's error for a document over the token limit (or nested beyond what
    the parser can read) as a violation; None for a plain syntax error."""
    # graphql-core reports both as syntax errors ending in "Parsing aborted.".
    if not error.message.endswith("Parsing aborted."):
        return None
    if "nested too deeply" in error.message:
        return _violation(QUERY_TOO_DEEP, "depth", limits.max_depth)
    return _violation(QUERY_TOO_COMPLEX, "tokens", limits.max_tokens)


_MESSAGES = {
    "depth": "The query is {actual} levels deep; the maximum is {maximum}.",
    "aliases": "The query uses {actual} aliases; the maximum is {maximum}.",
    "directives": "The query uses {actual} directives; the maximum is {maximum}.",
    "tokens": "The document has more than {maximum} tokens; parsing stopped.",
}


def _violation(
    code: str,
    limit: str,
    maximum: int,
    actual: int | None = None,
    *,
    node: OperationDefinitionNode | None = None,
) -> LimitViolation:
    if actual is None:
        message = (
            "The document is nested too deeply."
            if limit == "depth"
            else _MESSAGES[limit].format(maximum=maximum)
        )
    else:
        message = _MESSAGES[limit].format(actual=actual, maximum=maximum)
    extensions: dict[str, str | int] = {"limit": limit, "maximum": maximum}
    if actual is not None:
        extensions["actual"] = actual
    return LimitViolation(code, GraphQLError(message, node, extensions=extensions))
