"""Reading a GraphQL-over-HTTP request (GET query string or POST JSON body)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request


class BadRequest(Exception):
    """The HTTP request is not a well-formed GraphQL request (HTTP 400)."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True, slots=True)
class GraphQLRequest:
    query: str
    operation_name: str | None
    variables: dict[str, Any] | None
    extensions: dict[str, Any] | None


JSON_TYPES = ("application/json", "application/graphql-response+json")


def _parse_json_param(raw: str | None, name: str) -> Any:
    if raw is None or raw == "":
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequest(f"`{name}` is not valid JSON.") from None


def _from_mapping(params: dict[str, Any]) -> GraphQLRequest:
    query = params.get("query")
    if not isinstance(query, str) or query.strip() == "":
        raise BadRequest("The request has no `query` (a GraphQL document string).")
    operation_name = params.get("operationName")
    if operation_name == "":
        operation_name = None
    if operation_name is not None and not isinstance(operation_name, str):
        raise BadRequest("`operationName` must be a string.")
    variables = params.get("variables")
    if variables is not None and not isinstance(variables, dict):
        raise BadRequest("`variables` must be a JSON object.")
    extensions = params.get("extensions")
    if extensions is not None and not isinstance(extensions, dict):
        raise BadRequest("`extensions` must be a JSON object.")
    return GraphQLRequest(query, operation_name, variables, extensions)


def from_query_string(request: Request) -> GraphQLRequest:
    params = request.query_params
    return _from_mapping(
        {
            "query": params.get("query"),
            "operationName": params.get("operationName"),
            "variables": _parse_json_param(params.get("variables"), "variables"),
            "extensions": _parse_json_param(params.get("extensions"), "extensions"),
        }
    )


async def from_body(request: Request) -> GraphQLRequest:
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise BadRequest("Unsupported Content-Type: send application/json.", status=415)
    body = await request.body()
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadRequest("The request body is not valid JSON.") from None
    if not isinstance(payload, dict):
        raise BadRequest("The request body must be a JSON object.")
    return _from_mapping(payload)
