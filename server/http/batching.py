"""Query batching: a JSON array of GraphQL requests in one POST, one result each.

Apollo Client's `BatchHttpLink` sends this shape. Each entry is read on its own,
so one malformed entry fails only its own slot; persisted and plain operations
may be mixed. The answer is a JSON array of results in the same order.

Example:
    POST /graphql  [{"query": "{ a }"}, {"extensions": {"persistedQuery": {...}}}]
    -> 200         [{"data": {...}}, {"data": {...}}]
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from server.http.graphql_request import (
    BadRequest,
    GraphQLRequest,
    from_payload,
    from_query_string,
    json_payload,
)


async def read_request(
    request: Request, *, max_batch: int, content_type: str | None
) -> tuple[GraphQLRequest | list[GraphQLRequest | BadRequest], bytes | None]:
    """The GraphQL request of a GET or POST, or the entries of a batch (POST only); and
    for a single request the bytes it was read from (a GET's query string marked `?`,
    a POST's body), which say all it says."""
    if request.method == "GET":
        return from_query_string(request), b"?" + request.scope["query_string"]
    body = await request.body()
    payload = json_payload(body, content_type)
    if isinstance(payload, list):
        return batch_from_payload(payload, max_batch=max_batch), None
    return from_payload(payload), body


def batch_from_payload(payload: list[Any], *, max_batch: int) -> list[GraphQLRequest | BadRequest]:
    """The requests of a batch body, or BadRequest for the batch (413 when too long)."""
    if not payload:
        raise BadRequest("The batch is empty: send at least one request.")
    if len(payload) > max_batch:
        raise BadRequest(
            f"A batch may hold at most {max_batch} operations; this one has {len(payload)}.",
            status=413,
        )
    entries: list[GraphQLRequest | BadRequest] = []
    for item in payload:
        try:
            entries.append(from_payload(item))
        except BadRequest as error:
            entries.append(error)
    return entries
