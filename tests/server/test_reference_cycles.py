"""No request leaves a reference cycle behind: what it allocated is freed by reference
counting, and the cyclic collector finds nothing of it.

Each kind of request is sent K times, after a warm-up, straight through the app's ASGI
interface (an HTTP client such as httpx builds cycles of its own), with the collector
disabled, the result cache and rate limits in process and then in Redis;
`gc.collect()` then says how many objects only the collector could free. The bound
is zero. A failure lists the types left in cycles (gc.DEBUG_SAVEALL);
`bench/gc_cycles.py` finds the cycle itself. Found and broken this way: the loaders'
batch closures over the Loaders (loaders/container.py), graphql-core's executor and
error tracebacks (schema/cycles.py).
"""

from __future__ import annotations

import asyncio
import gc
from collections import Counter
from typing import Any

import orjson
import pytest

from tests.cache_support import CACHE_BACKENDS, cached_app
from tests.conftest import Database
from tests.factories import Factory

WARM_UP = 3
K = 5  # requests of each kind whose cyclic garbage is counted

DASHBOARD = (
    "query($n: Int!) { orders(first: $n) { edges { node { id status totalCents customer"
    " { name } items { quantity product { name averageRating category { name } } } } } } }"
)
PUBLIC = (
    "{ products(first: 10) { totalCount nodes { id name reviews(first: 3)"
    " { nodes { rating author { name } } } } } }"
)


class AsgiClient:
    """Sends one request through an ASGI app and returns (status, body): nothing more,
    so that every cycle counted is the app's."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def send(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        path, _, query = path.partition("?")
        raw_headers = [(b"host", b"test"), (b"content-length", str(len(body)).encode())]
        raw_headers += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": raw_headers,
            "client": ("127.0.0.1", 50000),
            "server": ("test", 80),
            "state": {},
        }
        messages = [{"type": "http.request", "body": body, "more_body": False}]
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            if messages:
                return messages.pop()
            await asyncio.Future()  # the client never disconnects
            raise AssertionError("unreachable")

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await self.app(scope, receive, send)
        status = next(m["status"] for m in sent if m["type"] == "http.response.start")
        return status, b"".join(
            m.get("body", b"") for m in sent if m["type"] == "http.response.body"
        )


def post(query: str, variables: dict[str, Any] | None = None) -> bytes:
    return orjson.dumps({"query": query, "variables": variables or {}})


async def cyclic_garbage(client: AsgiClient, request: tuple[Any, ...], times: int) -> Counter[str]:
    """The types of the objects only the collector frees after `times` sends of `request`:
    objects made by the sends, not garbage that was already there. CI found another
    test's matplotlib figures among them once (in the same xdist process, kept where the
    first collection did not reach them, and freed in the window)."""
    gc.unfreeze()  # the app's startup froze what was alive: collect all of it now
    gc.collect()
    before = {id(obj) for obj in gc.get_objects()}
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for _ in range(times):
            await client.send(*request)
        gc.collect()
        return Counter(
            f"{type(obj).__module__}.{type(obj).__qualname__}"
            for obj in gc.garbage
            if id(obj) not in before
        )
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


@pytest.mark.parametrize("backend", CACHE_BACKENDS)
async def test_no_request_leaves_a_reference_cycle(
    db: Database, factory: Factory, backend: str
) -> None:
    category = await factory.category()
    products = [await factory.product(category_id=category) for _ in range(5)]
    customer = await factory.user()
    for product in products:
        await factory.review(product_id=product, user_id=customer, rating=4)
    for n in range(6):
        await factory.order(
            user_id=customer, items=[(products[n % 5], 2, 1000), (products[0], 1, 500)]
        )
    # Redis (result cache, rate limits) gets a second: a late answer on a loaded machine
    # would drop its connection, and reconnecting makes cycles inside redis-py.
    async with cached_app(db, backend, REDIS_TIMEOUT_MS="1000") as api:
        admin = {"Authorization": f"Bearer {await api.token('admin@example.com', 'admin')}"}
        json = {"Content-Type": "application/json"}
        fresh = {"Cache-Control": "no-cache"}
        product_id = (await api.data("{ products(first: 1) { nodes { id } } }"))["products"]
        product_id = product_id["nodes"][0]["id"]
        kinds: dict[str, tuple[Any, ...]] = {
            "cached hit": ("POST", "/graphql", post(DASHBOARD, {"n": 10}), {**json, **admin}),
            "uncached": (
                "POST",
                "/graphql",
                post(DASHBOARD, {"n": 10}),
                {**json, **admin, **fresh},
            ),
            "uncached, anonymous": ("POST", "/graphql", post(PUBLIC), {**json, **fresh}),
            "GET": ("GET", "/graphql?query=%7B%20categories%20%7B%20name%20%7D%20%7D", b"", fresh),
            "batch": (
                "POST",
                "/graphql",
                orjson.dumps([{"query": PUBLIC}, {"query": "{ categories { name } }"}]),
                {**json, **fresh},
            ),
            "validation error": ("POST", "/graphql", post("{ nope }"), json),
            "field error": (
                "POST",
                "/graphql",
                post('{ order(id: "T3JkZXI6MQ==") { id } }'),  # anonymous: not allowed
                {**json, **fresh},
            ),
            "variable error": (
                "POST",
                "/graphql",
                post("query($n: Int!) { products(first: $n) { totalCount } }", {"n": "x"}),
                json,
            ),
            "bad token": ("POST", "/graphql", post(PUBLIC), {**json, "Authorization": "Bearer no"}),
            "mutation": (
                "POST",
                "/graphql",
                post(
                    "mutation($id: ID!) { updateProduct(id: $id, input: {priceCents: 1234})"
                    " { id priceCents } }",
                    {"id": product_id},
                ),
                {**json, **admin},
            ),
        }
        client = AsgiClient(api.app)
        left: dict[str, Counter[str]] = {}
        for name, request in kinds.items():
            for _ in range(WARM_UP):
                status, body = await client.send(*request)
            assert status < 500, (name, body)
            found = await cyclic_garbage(client, request, K)
            if found:
                left[name] = found
        assert not left, {name: found.most_common(8) for name, found in left.items()}
