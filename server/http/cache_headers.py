"""HTTP caching headers of a GraphQL answer, and conditional requests (RFC 9111, 9110).

One stored answer is served in two representations, `application/json` and
`application/graphql-response+json`, chosen by `Accept`: the bytes are the same,
the Content-Type is not. So every answer says `Vary: Accept` (in one header with
`Authorization` when it is per viewer), and an ETag is the representation's: the
body's tag and the media type together, so a 304 is only ever given for the
representation the client holds.

Example:
    headers = for_media_type(cache_headers(served, now=time.time()), media_type)
    if not_modified(request.headers.get("if-none-match"), headers.get("ETag")):
        return Response(status_code=304, headers=headers)
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping

from server.cache.cached_response import Served, etag_of


def cache_headers(served: Served, *, now: float) -> dict[str, str]:
    """`X-Cache` always; for a cacheable answer `Cache-Control` with the max-age left
    (`private` and `Vary: Authorization` when per viewer), the body's strong `ETag`
    (`for_media_type` makes both the representation's), and `Age` when it came from
    the cache; `Cache-Control: no-store` otherwise."""
    headers = {"X-Cache": served.state.value}
    policy = served.policy
    if not policy.cacheable:
        headers["Cache-Control"] = "no-store"
        return headers
    from_cache = served.produced is None and served.entry is not None
    age = served.entry.age(now) if from_cache and served.entry is not None else 0.0
    remaining = max(0, int(policy.max_age - age))
    headers["Cache-Control"] = f"{'private' if policy.private else 'public'}, max-age={remaining}"
    if policy.private:
        headers["Vary"] = "Authorization"
    headers["ETag"] = served.entry.etag if served.entry is not None else etag_of(served.body)
    if from_cache:
        headers["Age"] = str(int(age))
    return headers


def for_media_type(headers: Mapping[str, str], media_type: str) -> dict[str, str]:
    """`headers` of an answer served as `media_type`, chosen by `Accept`: `Accept` added
    to its `Vary` (one header), its ETag made that representation's."""
    represented = dict(headers)
    represented["Vary"] = _varied_by_accept(represented.get("Vary", ""))
    if "ETag" in represented:
        represented["ETag"] = representation_etag(represented["ETag"], media_type)
    return represented


@functools.lru_cache(maxsize=64)  # "" or "Authorization", asked on every answer
def _varied_by_accept(vary: str) -> str:
    """The `Vary` value `vary` with `Accept` among its names."""
    varies = [name.strip() for name in vary.split(",") if name.strip()]
    if not any(name.lower() == "accept" for name in varies):
        varies.append("Accept")
    return ", ".join(varies)


def representation_etag(body_etag: str, media_type: str) -> str:
    """The strong tag of the body tagged `body_etag` served as `media_type`.

    The body's hash stays readable at its front (one answer, several types); a short
    hash of the media type follows, so each representation's tag is its own.
    """
    return '"' + body_etag.strip('"') + "-" + _kind(media_type) + '"'


@functools.lru_cache(maxsize=64)  # a few media types, asked on every answer
def _kind(media_type: str) -> str:
    return hashlib.blake2b(media_type.lower().encode(), digest_size=4).hexdigest()


def not_modified(if_none_match: str | None, etag: str | None) -> bool:
    """Whether `If-None-Match` matches `etag` (weak comparison, as the RFC wants for it)."""
    if not if_none_match or etag is None:
        return False
    if if_none_match.strip() == "*":
        return True
    return etag in (tag.strip().removeprefix("W/") for tag in if_none_match.split(","))
