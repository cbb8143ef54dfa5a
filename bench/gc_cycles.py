"""What each kind of request leaves for the cyclic garbage collector, and the cycles.

In process over the `medium` seed (result cache on): each kind of request is sent
`--requests` times straight through the app's ASGI interface (no HTTP client: httpx
builds cycles of its own), after a warm-up, with the collector disabled; then one
`gc.collect()` with `gc.DEBUG_SAVEALL` keeps what only it could free. Printed per kind:
objects per request, the most common types, and for the first few types one cycle
through them (a path of references from an object back to itself), which says where
to break it. tests/server/test_reference_cycles.py holds the result at zero.

    .venv/bin/python -m bench.prepare          # once: create and seed bench_medium
    .venv/bin/python -m bench.gc_cycles [--database-url URL] [--requests 20]
        [--kinds uncached,hit,...] [--redis-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
from collections import Counter, deque
from typing import Any

import orjson

from bench.common import DASHBOARD, DEFAULT_DATABASE_URL, admin_token, in_process_app

FRESH = (b"cache-control", b"no-cache")
JSON = (b"content-type", b"application/json")


def kinds(token: str) -> dict[str, tuple[bytes, list[tuple[bytes, bytes]]]]:
    """Request body and headers of each kind."""
    admin = (b"authorization", f"Bearer {token}".encode())
    dashboard = orjson.dumps({"query": DASHBOARD, "variables": {"n": 50}})
    update = 'mutation { updateProduct(id: "UHJvZHVjdDox", input: {priceCents: 1234}) { id } }'
    return {
        "uncached": (dashboard, [JSON, admin, FRESH]),
        "hit": (dashboard, [JSON, admin]),
        "validation error": (orjson.dumps({"query": "{ nope }"}), [JSON]),
        "field error": (orjson.dumps({"query": '{ order(id: "T3JkZXI6MQ==") { id } }'}), [JSON]),
        "variable error": (
            orjson.dumps(
                {
                    "query": "query($n: Int!) { products(first: $n) { totalCount } }",
                    "variables": {"n": "x"},
                }
            ),
            [JSON],
        ),
        "mutation": (orjson.dumps({"query": update}), [JSON, admin]),
    }


async def post(app: Any, body: bytes, headers: list[tuple[bytes, bytes]]) -> int:
    """One POST /graphql through ASGI; its status."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"bench"), (b"content-length", str(len(body)).encode()), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("bench", 80),
        "state": {},
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop()
        await asyncio.Future()  # never disconnects
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    await app(scope, receive, send)
    return statuses[0]


def describe(obj: Any) -> str:
    kind = type(obj)
    if kind.__name__ == "function":
        return f"function {obj.__qualname__}"
    if kind.__name__ == "frame":
        where = f"{obj.f_code.co_filename.rsplit('/', 1)[-1]}:{obj.f_lineno}"
        return f"frame {obj.f_code.co_name} ({where})"
    if kind.__name__ == "cell":
        try:
            return f"cell of {type(obj.cell_contents).__qualname__}"
        except ValueError:
            return "empty cell"
    if isinstance(obj, dict):
        return f"dict {list(obj)[:4]}"
    return f"{kind.__module__}.{kind.__qualname__}"


def cycle_through(start: Any, garbage: dict[int, Any]) -> list[Any] | None:
    """The shortest path of references from `start` back to itself, within `garbage`."""
    came_from: dict[int, int | None] = {id(start): None}
    queue = deque([start])
    while queue:
        obj = queue.popleft()
        for referent in gc.get_referents(obj):
            if referent is start:
                path, key = [obj], id(obj)
                while (key := came_from[key]) is not None:  # type: ignore[assignment]
                    path.append(garbage[key])
                return path[::-1]
            if id(referent) in garbage and id(referent) not in came_from:
                came_from[id(referent)] = id(obj)
                queue.append(referent)
    return None


async def main(database_url: str, redis_url: str | None, requests: int, chosen: list[str]) -> None:
    env = {"CACHE_ENABLED": "true", **({"REDIS_URL": redis_url} if redis_url else {})}
    async with in_process_app(database_url, env) as api:
        token = await admin_token(api.app)
        for name, (body, headers) in kinds(token).items():
            if chosen and name not in chosen:
                continue
            for _ in range(5):
                status = await post(api.app, body, headers)
            gc.collect()
            gc.disable()
            gc.set_debug(gc.DEBUG_SAVEALL)
            try:
                for _ in range(requests):
                    await post(api.app, body, headers)
                found = gc.collect()
                garbage = {id(obj): obj for obj in gc.garbage}
                types = Counter(describe(obj) for obj in gc.garbage)
                print(f"{name} (HTTP {status}): {found / requests:.1f} objects per request")
                for described, count in types.most_common(12):
                    print(f"  {count / requests:8.1f}  {described}")
                shown: set[str] = set()
                for obj in gc.garbage:
                    if len(shown) == 3:
                        break
                    if describe(obj) in shown or (cycle := cycle_through(obj, garbage)) is None:
                        continue
                    shown.update(describe(step) for step in cycle)
                    print("  cycle: " + " -> ".join(describe(step) for step in cycle) + " -> back")
            finally:
                gc.set_debug(0)
                gc.garbage.clear()
                gc.enable()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--redis-url", default=None)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--kinds", default="", help="comma-separated; default: all")
    args = parser.parse_args()
    chosen = [kind for kind in args.kinds.split(",") if kind]
    asyncio.run(main(args.database_url, args.redis_url, args.requests, chosen))
