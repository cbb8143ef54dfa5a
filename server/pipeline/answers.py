"""An executed operation's answer: its payload (errors coded and masked) and status."""

from __future__ import annotations

from typing import Any

from graphql import ExecutionResult

from schema.errors import RETRY_AFTER_SECONDS, format_execution_error


def result_payload(result: ExecutionResult, request_id: str | None) -> dict[str, Any]:
    payload: dict[str, Any] = {}
    if result.errors:
        payload["errors"] = [
            format_execution_error(e, request_id=request_id) for e in result.errors
        ]
    payload["data"] = result.data
    return payload


def error_codes(payload: dict[str, Any]) -> list[str]:
    """The `extensions.code` of each error of an answer's payload."""
    codes = []
    for error in payload.get("errors") or ():
        extensions = error.get("extensions") if isinstance(error, dict) else None
        code = extensions.get("code") if isinstance(extensions, dict) else None
        codes.append(str(code or "INTERNAL_SERVER_ERROR"))
    return codes


def answer_status(status: int, *, unavailable: bool) -> tuple[int, dict[str, str]]:
    """An executed operation's status: as given, or 503 when the database could not
    answer (its errors say SERVICE_UNAVAILABLE), so clients and proxies retry later."""
    if unavailable:
        return 503, {"Retry-After": str(RETRY_AFTER_SECONDS)}
    return status, {}
