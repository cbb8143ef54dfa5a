"""Failures the property test found (test_property.py), kept as regular tests after shrinking.

Each case is the exact document hypothesis shrank to, sent as the role that
failed, against the same seeded app; the answer must be JSON with a status
below 500 and no INTERNAL_SERVER_ERROR. The comment of each case names the
issue item it belongs to.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import pytest

from tests.server.test_property import Served, check, send, served

__all__ = ["served"]


def _deep_cursor(depth: int = 2000) -> str:
    """A cursor that decodes to JSON nested deeper than Python's recursion limit."""
    raw = ("[" * depth + "]" * depth).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


@dataclass(frozen=True)
class Shrunk:
    role: str
    query: str
    variables: dict[str, Any] | None = None


CASES = {
    # Issue 9, item 2: `reviews(first: 0)` fails with BAD_USER_INPUT, graphql-core
    # cancels its sibling `orderCount`, whose DataLoader future the viewer's
    # `orderCount` (the admin is User 1) shares: CancelledError escapes the app.
    "cancelled-shared-loader-future": Shrunk(
        role="admin",
        query="""{
          q0_0_node: node(id: "VXNlcjox") {
            ... on User { reviews(first: 0, after: "") { totalCount } orderCount }
          }
          q0_1_viewer: viewer { orderCount }
        }""",
    ),
    # Issue 9, item 2 as filed: the same failure through `user(id:)` aliases.
    "cancelled-shared-loader-future-as-filed": Shrunk(
        role="anonymous",
        query="""{
          a: user(id: "VXNlcjo0") { reviews(first: 101) { totalCount } r2: reviews { totalCount } }
          b: user(id: "VXNlcjo0") { reviews { totalCount } }
        }""",
    ),
    # Issue 9, item 6: a cursor that decodes to deeply nested JSON; json.loads
    # raises RecursionError, which the cursor decoder does not expect.
    "deep-cursor": Shrunk(
        role="anonymous", query=f'{{ products(after: "{_deep_cursor()}") {{ totalCount }} }}'
    ),
    "deep-cursor-own-orders": Shrunk(
        role="customer",
        query=f'{{ orders(first: 100, after: "{_deep_cursor()}") {{ totalCount }} }}',
    ),
    # Issue 9, item 6: an undeclared variable 300 levels deep; orjson refuses it
    # while the result cache builds its key (server/cache/cached_response.py).
    "deep-unused-variable": Shrunk(
        role="anonymous", query="{ __typename }", variables={"unused": _nested(300)}
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
async def test_shrunk_failure_is_answered(served: Served, case: Shrunk) -> None:
    response = await send(
        served.api, (case.query, case.variables), case.role, served.tokens[case.role]
    )
    check(response, case.role)
