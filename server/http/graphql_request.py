"""Reading a GraphQL-over-HTTP request (GET query string or POST JSON body).

A request may name a persisted document instead of sending its text: then
`query` is None and `extensions.persistedQuery` or `documentId` says which.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from server.pipeline.request import GraphQLRequest

if TYPE_CHECKING:
    from starlette.requests import Request

__all__ = [
    "BadRequest",
    "GraphQLRequest",
    "check_json_content_type",
    "from_mapping",
    "from_payload",
    "from_query_string",
    "json_payload",
]


class BadRequest(Exception):
    """The HTTP request is not a well-formed GraphQL request (HTTP 400)."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def _parse_json_param(raw: str | None, name: str) -> Any:
    if raw is None or raw == "":
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequest(f"`{name}` is not valid JSON.") from None


def from_mapping(params: dict[str, Any]) -> GraphQLRequest:
    """A request from its decoded parameters; BadRequest when one has the wrong type."""
    query = params.get("query")
    document_id = params.get("documentId")
    if document_id is not None and not isinstance(document_id, str):
        raise BadRequest("`documentId` must be a string.")
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
    names_persisted = document_id is not None or "persistedQuery" in (extensions or {})
    if query is None and names_persisted:
        return GraphQLRequest(None, operation_name, variables, extensions, document_id)
    if not isinstance(query, str) or query.strip() == "":
        raise BadRequest("The request has no `query` (a GraphQL document string).")
    return GraphQLRequest(query, operation_name, variables, extensions, document_id)


def from_query_string(request: Request) -> GraphQLRequest:
    params = request.query_params
    return from_mapping(
        {
            "query": params.get("query"),
            "documentId": params.get("documentId"),
            "operationName": params.get("operationName"),
            "variables": _parse_json_param(params.get("variables"), "variables"),
            "extensions": _parse_json_param(params.get("extensions"), "extensions"),
        }
    )


def json_payload(body: bytes, content_type: str | None) -> Any:
    """The decoded JSON body of a POST; BadRequest (415) unless it is sent as JSON."""
    check_json_content_type(content_type)
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadRequest("The request body is not valid JSON.") from None


def check_json_content_type(content_type: str | None) -> None:
    """BadRequest (415) unless `content_type` is JSON in UTF-8."""
    media_type, _, parameters = (content_type or "").partition(";")
    if media_type.strip().lower() != "application/json":
        # Form, multipart and text/plain bodies are what a browser may send cross-site
        # without a CORS preflight: refusing them keeps such requests from running.
        raise BadRequest("Unsupported Content-Type: send application/json.", status=415)
    charset = _charset(parameters)
    if charset not in (None, "utf-8", "utf8"):
        raise BadRequest("Unsupported charset: send UTF-8.", status=415)


def from_payload(payload: Any) -> GraphQLRequest:
    if not isinstance(payload, dict):
        raise BadRequest("The request body must be a JSON object.")
    return from_mapping(payload)


def _charset(parameters: str) -> str | None:
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"').lower()
    return None
