"""The README's ```graphql examples run as written against `storefront serve --demo`.

Each block is sent as GraphiQL would send it, over real HTTP to a real
`serve --demo` process (which migrates, seeds `small` and prints the demo
tokens), with the token and variables its first comments name. Each must
answer without errors, and with data: every top-level field non-null, and the
first list it holds (the page of a connection, say) non-empty.
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from graphql import OperationDefinitionNode, parse

from resolvers.auth import TOKEN_PREFIX
from server.cli.seed import DEMO_USERS
from tests.conftest import Database
from tests.live_server import LiveServer, live_server

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCK = re.compile(r"^```graphql\n(.*?)^```$", re.DOTALL | re.MULTILINE)
TOKEN = re.compile(re.escape(TOKEN_PREFIX) + r"[A-Za-z0-9_-]{20,}")
VARIABLES = re.compile(r"^# Variables: (.+)$", re.MULTILINE)
ROLES = {"<admin token>": "admin", "<customer token>": "customer"}
# `serve --demo` migrates and seeds before it serves: slow on a loaded machine.
STARTUP = 240


@dataclass(frozen=True)
class Example:
    name: str
    document: str
    role: str | None
    variables: dict[str, Any]


def examples() -> list[Example]:
    text = README.read_text()
    found = []
    for document in BLOCK.findall(text):
        operations = [
            d for d in parse(document).definitions if isinstance(d, OperationDefinitionNode)
        ]
        assert len(operations) == 1, f"one operation per block:\n{document}"
        assert operations[0].name is not None, f"an unnamed operation:\n{document}"
        roles = {role for marker, role in ROLES.items() if marker in document}
        assert len(roles) <= 1, f"two tokens named in one block:\n{document}"
        variables = VARIABLES.search(document)
        found.append(
            Example(
                name=operations[0].name.value,
                document=document,
                role=roles.pop() if roles else None,
                variables=json.loads(variables.group(1)) if variables else {},
            )
        )
    assert len(found) == text.count("```graphql") > 0, "a ```graphql block was not read"
    return found


def test_every_block_is_one_named_operation() -> None:
    names = [example.name for example in examples()]

    assert len(names) >= 5
    assert len(set(names)) == len(names), names


def _lists(value: Any) -> Iterator[list[Any]]:
    """Every list inside `value`, shallowest first."""
    queue = deque([value])
    while queue:
        item = queue.popleft()
        if isinstance(item, list):
            yield item
            queue.extend(item)
        elif isinstance(item, dict):
            queue.extend(item.values())


def _demo_tokens(server: LiveServer) -> dict[str, str]:
    """The demo tokens `serve --demo` printed, by role (asked of the API, not guessed)."""
    tokens = {}
    for token in TOKEN.findall(server.output()):
        response = httpx.post(
            server.graphql,
            json={"query": "query Me { viewer { email role } }"},
            headers={"Authorization": f"Bearer {token}"},
        )
        viewer = response.json()["data"]["viewer"]
        tokens[viewer["role"].lower()] = token
        assert viewer["email"] in {email for email, *_ in DEMO_USERS.values()}
    assert set(tokens) == {"admin", "customer"}, server.output()
    return tokens


def _answer(server: LiveServer, example: Example, tokens: dict[str, str]) -> Any:
    """`data` of the example as GraphiQL would send it, asserting it has no errors."""
    headers = {}
    if example.role is not None:
        headers["Authorization"] = f"Bearer {tokens[example.role]}"
    response = httpx.post(
        server.graphql,
        json={"query": example.document, "variables": example.variables},
        headers=headers,
        timeout=30,
    )
    assert response.status_code == 200, (example.name, response.text)
    body = response.json()
    assert "errors" not in body, (example.name, body["errors"])
    return body["data"]


async def test_every_example_runs_against_the_demo_data(db: Database) -> None:
    with live_server({"DATABASE_URL": db.url}, args=("--demo",), timeout=STARTUP) as server:
        tokens = _demo_tokens(server)
        for example in examples():
            for field, value in _answer(server, example, tokens).items():
                assert value, (example.name, field, value)
                first = next(_lists(value), None)
                assert first is None or first, (example.name, field, "an empty list")
