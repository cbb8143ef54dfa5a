"""HTTP caching headers of a GraphQL answer, and conditional requests (RFC 9111, 9110).

Example:
    headers = cache_headers(served, now=time.time())
    if not_modified(request.headers.get("if-none-match"), headers.get("ETag")):
        return Response(status_code=304, headers=headers)
"""

from __future__ import annotations

from server.cached_response import Served, etag_of


def cache_headers(served: Served, *, now: float) -> dict[str, str]:
    """`X-Cache` always; for a cacheable answer `Cache-Control` with the max-age left
    (`private` and `Vary: Authorization` when per viewer), a strong `ETag`, and `Age`
    when it came from the cache; `Cache-Control: no-store` otherwise."""
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


def not_modified(if_none_match: str | None, etag: str | None) -> bool:
    """Whether `If-None-Match` matches `etag` (weak comparison, as the RFC wants for it)."""
    if not if_none_match or etag is None:
        return False
    if if_none_match.strip() == "*":
        return True
    return etag in (tag.strip().removeprefix("W/") for tag in if_none_match.split(","))
