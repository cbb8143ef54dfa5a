"""Reading the server's log lines back: `key=value` text (logfmt) or JSON objects."""

from __future__ import annotations

import json
import shlex
import time
from typing import Any

import httpx

from tests.live_server import LiveServer


def parse_text(line: str) -> dict[str, str]:
    """A `key=value` line as a dict; quoted values unquoted (`\\\\` and `\\"` undone)."""
    pairs = (token.split("=", 1) for token in shlex.split(line))
    return {key: value for key, value in pairs}


def parse(line: str, log_format: str) -> dict[str, Any]:
    return json.loads(line) if log_format == "json" else parse_text(line)


def records(output: str, log_format: str) -> list[dict[str, Any]]:
    """Every log line of a server's output (tracebacks and other text skipped in text)."""
    found = []
    for line in output.splitlines():
        if log_format == "json":
            found.append(json.loads(line))  # every line must be JSON
        elif line.startswith("time="):
            found.append(parse_text(line))
    return found


def output_with(server: LiveServer, response: httpx.Response, timeout: float = 10) -> str:
    """The server's output once `response`'s request line is in it: the line is written
    after the answer's last byte, so a client can read the answer before it."""
    request_id = response.headers["x-request-id"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        output = server.output()
        if any(
            request_id in line and "storefront.requests" in line for line in output.splitlines()
        ):
            break
        time.sleep(0.05)
    return output
