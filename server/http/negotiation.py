"""Content negotiation for GraphQL over HTTP: which media type to answer with.

`application/graphql-response+json` is the spec's own type; `application/json`
is what older clients know. `Accept` is read with its q-values: the client's
preference wins, a tie goes to the spec's type, `*/*` (or no `Accept` at all)
means `application/json`, and a range with q=0 is refused.

Example:
    response_media_type("application/graphql-response+json, application/json;q=0.9")
    # -> "application/graphql-response+json"
    response_media_type("text/csv")  # -> None: answer 406
"""

from __future__ import annotations

import functools

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
APPLICATION_JSON = "application/json"


def _ranges(accept: str) -> list[tuple[str, float]]:
    """(media range, q) of each entry of an `Accept` value."""
    ranges = []
    for entry in accept.split(","):
        media_range, *parameters = (part.strip() for part in entry.split(";"))
        if not media_range:
            continue
        quality = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        ranges.append((media_range.lower(), quality))
    return ranges


def _quality(ranges: list[tuple[str, float]], media_type: str) -> float:
    """The q-value `ranges` give `media_type`: the most specific matching range decides."""
    kind = media_type.split("/", 1)[0]
    best: tuple[int, float] = (-1, 0.0)
    for media_range, quality in ranges:
        if media_range == media_type:
            specificity = 2
        elif media_range == f"{kind}/*":
            specificity = 1
        elif media_range == "*/*":
            specificity = 0
        else:
            continue
        if specificity > best[0]:
            best = (specificity, quality)
    return best[1]


@functools.lru_cache(maxsize=256)  # clients repeat their Accept header on every request
def response_media_type(accept: str | None) -> str | None:
    """The media type to answer an `Accept` header with; None when none is acceptable."""
    if accept is None or not accept.strip():
        return APPLICATION_JSON
    ranges = _ranges(accept)
    spec = _quality(ranges, GRAPHQL_RESPONSE_JSON)
    legacy = _quality(ranges, APPLICATION_JSON)
    if spec <= 0 and legacy <= 0:
        return None
    # `*/*` alone matches both equally: the spec asks for application/json then.
    explicit_spec = any(r == GRAPHQL_RESPONSE_JSON for r, _ in ranges)
    if spec > legacy or (spec == legacy and explicit_spec):
        return GRAPHQL_RESPONSE_JSON
    return APPLICATION_JSON


def wants_graphiql(*, method: str, accept: str | None, has_query: bool) -> bool:
    """A browser navigating to the endpoint: GET, HTML accepted, no GraphQL parameters."""
    return method == "GET" and "text/html" in (accept or "") and not has_query
