"""The hit path (server/http/hit_path.py) answers exactly as the full stack does.

One script of requests goes to two apps over the same data, HIT_PATH_ENABLED on and
off, each with a cache and rate-limit buckets of its own (a private Redis, or in
process) and the response cache on a frozen clock. Compared, request by request:
status, headers, the decoded body, and the request log line; at the end, every
metric the app counted (durations aside). A spy on `fresh_hit` records which requests
the path answered, so the comparison is known to cover them, and that every request
that must not take the path went to the full stack.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import zlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import brotli
import httpx
import orjson
import pytest
import zstandard
from prometheus_client.parser import text_string_to_metric_families

import server.http.hit_path as hit_path
from resolvers.tokens import create_token
from schema.global_id import to_global_id
from server.observability.log_context import RequestContext
from tests.cache_support import cache_env, redis_process
from tests.conftest import Api, Database
from tests.factories import Factory
from tests.live_server import LiveServer, live_server
from tests.server.apps import serve

PRODUCT = (
    "query Product($id: ID!) { product(id: $id) { name priceCents"
    " reviews(first: 5) { nodes { rating body author { name } } } } }"
)
CATALOG = (
    "query Catalog { products(first: 40) { nodes { id name description priceCents"
    " category { name } } } }"
)
MINE = "query Mine { viewer { email orders(first: 5) { nodes { id status totalCents } } } }"
ORDERS = "query Orders { orders(first: 20) { nodes { id status totalCents customer { name } } } }"
NAME = "query Name($id: ID!) { product(id: $id) { name } }"
TRIVIAL = "{ __typename }"
REQUEST_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass
class Step:
    """One request of the script: a query (or a raw body), as whom, with which headers."""

    label: str
    query: str = ""
    variables: dict[str, Any] | None = None
    who: str | None = None  # "admin", "customer", "bad", or anonymous
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    extensions: dict[str, Any] | None = None
    times: int = 3
    may_take_path: bool = True


@dataclass
class Exchange:
    label: str
    status: int
    headers: dict[str, str]
    body: bytes
    log: dict[str, Any] | None
    took_path: bool


def script(product: str) -> list[Step]:
    variables = {"id": product}
    return [
        Step("anonymous product", PRODUCT, variables),
        Step(
            "anonymous product, spec media type",
            PRODUCT,
            variables,
            headers={"Accept": "application/graphql-response+json"},
        ),
        Step(
            "anonymous product, either media type",
            PRODUCT,
            variables,
            headers={"Accept": "application/graphql-response+json, application/json;q=0.9"},
        ),
        Step("catalog, gzip", CATALOG, headers={"Accept-Encoding": "gzip"}),
        Step("catalog, br", CATALOG, headers={"Accept-Encoding": "br"}),
        Step("catalog, zstd first", CATALOG, headers={"Accept-Encoding": "gzip;q=0.5, zstd"}),
        Step(
            "catalog, identity refused", CATALOG, headers={"Accept-Encoding": "gzip, identity;q=0"}
        ),
        Step("catalog, no coding", CATALOG, headers={"Accept-Encoding": "identity"}),
        Step(
            "small answer, coding asked", NAME, variables, headers={"Accept-Encoding": "gzip, br"}
        ),
        Step(
            "small answer, identity refused",
            NAME,
            variables,
            headers={"Accept-Encoding": "br, identity;q=0"},
        ),
        Step("admin orders (private)", ORDERS, who="admin", headers={"Accept-Encoding": "br"}),
        Step("customer's own (private)", MINE, who="customer"),
        Step(
            "customer's own, their request id",
            MINE,
            who="customer",
            headers={"X-Request-ID": "client-id.42"},
        ),
        Step("unsafe request id", MINE, who="customer", headers={"X-Request-ID": "no spaces"}),
        Step(
            "forwarded for (untrusted)",
            PRODUCT,
            variables,
            headers={"X-Forwarded-For": "203.0.113.9"},
        ),
        Step(
            "traceparent",
            PRODUCT,
            variables,
            headers={"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
        ),
        Step(
            "charset",
            PRODUCT,
            variables,
            headers={"Content-Type": "application/json; charset=utf-8"},
        ),
        # Not for the path: each must reach the full stack, answered as ever.
        Step(
            "cors origin",
            PRODUCT,
            variables,
            headers={"Origin": "https://shop.example"},
            may_take_path=False,
        ),
        Step(
            "no-cache",
            PRODUCT,
            variables,
            headers={"Cache-Control": "no-cache"},
            may_take_path=False,
        ),
        Step(
            "read-after cookie",
            PRODUCT,
            variables,
            headers={"Cookie": "theme=dark; sf_read_after=x.y"},
            may_take_path=False,
        ),
        Step("another cookie", PRODUCT, variables, headers={"Cookie": "theme=dark"}),
        Step("dry run", PRODUCT, variables, headers={"X-Cost-Dry-Run": "1"}, may_take_path=False),
        Step(
            "text/plain body",
            raw=orjson.dumps({"query": TRIVIAL}),
            headers={"Content-Type": "text/plain"},
            may_take_path=False,
        ),
        Step(
            "not acceptable",
            PRODUCT,
            variables,
            headers={"Accept": "text/html"},
            may_take_path=False,
        ),
        Step("bad token", PRODUCT, variables, who="bad", may_take_path=False),
        Step(
            "persisted query extension",
            PRODUCT,
            variables,
            extensions={"persistedQuery": {"version": 1, "sha256Hash": "0" * 64}},
            may_take_path=False,
        ),
        Step("not json", raw=b"{not json", may_take_path=False),
        Step(
            "batch", raw=orjson.dumps([{"query": TRIVIAL}, {"query": TRIVIAL}]), may_take_path=False
        ),
        # Last: the anonymous bucket runs dry, and the path must answer 429 as the stack.
        Step("until rate limited", CATALOG, times=6),
    ]


@pytest.fixture
def taken(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each call of `fresh_hit` answered (True) or declined, in order."""
    answered: list[bool] = []
    real = hit_path.fresh_hit

    async def spy(*args: Any, **kwargs: Any) -> Any:
        result = await real(*args, **kwargs)
        answered.append(result is not None)
        return result

    monkeypatch.setattr(hit_path, "fresh_hit", spy)
    return answered


@pytest.fixture(params=["memory", "redis"])
def cache_backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.param
    return backend


async def test_the_hit_path_answers_as_the_full_stack(
    db: Database,
    factory: Factory,
    cache_backend: str,
    tmp_path: Path,
    taken: list[bool],
) -> None:
    category = await factory.category(name="Lamps")
    products = [
        await factory.product(category_id=category, name=f"Lamp {n}", description="x" * 80)
        for n in range(40)
    ]
    customer = await factory.user(email="shopper@example.com", name="Shopper")
    for n in range(3):
        await factory.review(product_id=products[n], user_id=customer, rating=n + 2)
        await factory.review(product_id=products[0], rating=n + 2)
        await factory.order(user_id=customer, items=[(products[n], 1, 1000)])
    product = to_global_id("Product", products[0])

    runs: dict[bool, tuple[list[Exchange], dict[str, float], float]] = {}
    for enabled in (True, False):
        async with _app(db, cache_backend, tmp_path, enabled) as api:
            tokens = {
                "admin": await api.token("boss@example.com", role="admin"),
                "customer": await api.token("shopper@example.com"),
                "bad": "not-a-token",
            }
            runs[enabled] = await _run(api, script(product), tokens, taken)

    on, off = runs[True], runs[False]
    assert on[2] == sum(e.took_path for e in on[0]), "hit path answers counted"
    assert off[2] == 0
    assert [e.label for e in on[0]] == [e.label for e in off[0]]
    for with_path, without in zip(on[0], off[0], strict=True):
        where = f"{with_path.label}: "
        assert with_path.status == without.status, where + "status"
        assert _steady(with_path.headers) == _steady(without.headers), where + "headers"
        for name in _CLOCKED:
            seconds = [e.headers.get(name) for e in (with_path, without)]
            assert (seconds[0] is None) == (seconds[1] is None), where + name
            if seconds[0] is not None and seconds[1] is not None:
                assert abs(int(seconds[0]) - int(seconds[1])) <= SLACK, where + name
        assert _steady_body(with_path.body) == _steady_body(without.body), where + "body"
        assert with_path.log == without.log, where + "log line"
    assert on[1] == off[1], "metrics"

    # The path answered the repeats it may take, and nothing else.
    steps = {step.label: step for step in script(product)}
    answered = [e.label for e in on[0] if e.took_path]
    assert not any(e.took_path for e in off[0])
    assert not [label for label in answered if not steps[label].may_take_path]
    for label, step in steps.items():
        if step.may_take_path and step.who != "bad":
            assert label in answered, f"{label}: never answered by the hit path"
    statuses = [e.status for e in on[0] if e.label == "until rate limited"]
    assert statuses[0] == 200, statuses
    assert 429 in statuses, statuses
    assert any(e.took_path and e.status == 429 for e in on[0])


@contextlib.asynccontextmanager
async def _app(db: Database, backend: str, directory: Path, enabled: bool) -> AsyncIterator[Api]:
    env = {
        "HIT_PATH_ENABLED": str(enabled).lower(),
        # A bucket that runs dry within the script, and does not refill during it.
        "RATE_LIMIT_MAXIMUM": "1720",
        "RATE_LIMIT_RESTORE_RATE": "0.001",
        "ADMIN_RATE_LIMIT_RESTORE_RATE": "0.001",
        "COMPRESSION_MIN_BYTES": "1024",
        # Both runs must see Redis answer: past the default 50 ms deadline (a loaded CI
        # host) a lookup counts as a miss and the answer legitimately differs (a cost
        # charged, not refunded: seen once as RateLimit-Remaining 19952 against 19986).
        "REDIS_TIMEOUT_MS": "2000",
    }
    async with contextlib.AsyncExitStack() as stack:
        redis_url = None
        if backend == "redis":
            redis_url = (await stack.enter_async_context(redis_process(directory))).url
        api = await stack.enter_async_context(serve(db, **cache_env(backend, redis_url, **env)))
        responses = api.services.caches.responses
        frozen = float(int(responses.clock()))
        responses.clock = lambda: frozen  # Age and max-age the same in both runs
        yield api


async def _run(
    api: Api, steps: list[Step], tokens: dict[str, str], taken: list[bool]
) -> tuple[list[Exchange], dict[str, float], float]:
    exchanges = []
    with _request_log() as lines:
        for step in steps:
            for _ in range(step.times):
                taken.clear()
                exchanges.append(await _send(api, step, tokens, lines, any_taken=taken))
    metrics = (await api.client.get("/metrics")).text
    return exchanges, _counted(metrics), hit_path_answers(metrics)


async def _send(
    api: Api,
    step: Step,
    tokens: dict[str, str],
    lines: list[dict[str, Any]],
    *,
    any_taken: list[bool],
) -> Exchange:
    headers = {"Content-Type": "application/json", **step.headers}
    if step.who is not None:
        headers["Authorization"] = f"Bearer {tokens[step.who]}"
    body = step.raw
    if body is None:
        payload: dict[str, Any] = {"query": step.query}
        if step.variables is not None:
            payload["variables"] = step.variables
        if step.extensions is not None:
            payload["extensions"] = step.extensions
        body = orjson.dumps(payload)
    lines.clear()
    request = api.client.build_request("POST", "/graphql", content=body, headers=headers)
    response = await api.client.send(request, stream=True)
    raw = b"".join([chunk async for chunk in response.aiter_raw()])
    await response.aclose()
    answer = dict(response.headers)
    request_id = answer.pop("x-request-id")
    given = step.headers.get("X-Request-ID", "")
    if re.fullmatch(r"[A-Za-z0-9._-]{1,64}", given):
        assert request_id == given  # a client's safe id is kept
    else:
        assert REQUEST_ID.match(request_id), request_id
    assert len(lines) == 1, f"{step.label}: {len(lines)} request log lines"
    log = dict(lines[0])
    assert log.pop("request_id") == request_id
    log.pop("duration_ms")
    return Exchange(
        step.label,
        response.status_code,
        answer,
        _decoded(raw, answer.get("content-encoding")),
        log,
        any(any_taken),
    )


# Seconds until the bucket is full or can pay, derived from the time since its last
# refill: the two runs' requests come at slightly different moments, so these may differ
# by about as much as the runs' timing does (seconds on a loaded machine).
_CLOCKED = ("ratelimit-reset", "retry-after")
SLACK = 30
_RETRY_IN = re.compile(rb"retry in \d+ s")


def _steady(headers: dict[str, str]) -> dict[str, str]:
    """The headers but those `_CLOCKED`, compared within SLACK."""
    return {name: value for name, value in headers.items() if name not in _CLOCKED}


def _steady_body(body: bytes) -> bytes:
    """The body with a 429's "retry in N s" (its Retry-After, compared within SLACK)."""
    return _RETRY_IN.sub(b"retry in N s", body)


def _decoded(raw: bytes, coding: str | None) -> bytes:
    if coding is None:
        return raw
    if coding == "gzip":
        return zlib.decompress(raw, wbits=47)
    if coding == "br":
        return bytes(brotli.decompress(raw))
    assert coding == "zstd", coding
    return zstandard.ZstdDecompressor().decompressobj().decompress(raw)


_LOGGED = (
    "method",
    "path",
    "status",
    "duration_ms",
    "operation_type",
    "operation_name",
    "cost",
    "cost_requested",
    "sql_statements",
    "cache_result",
    "client_id",
)


@contextlib.contextmanager
def _request_log() -> Iterator[list[dict[str, Any]]]:
    """The request log's lines (their fields and request id), as they are written."""
    lines: list[dict[str, Any]] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage() == "request":
                line = {key: getattr(record, key, None) for key in _LOGGED}
                line["request_id"] = getattr(record, "request_id", None)
                lines.append(line)

    handler = Keep()
    handler.addFilter(RequestContext())
    logger = logging.getLogger("storefront.requests")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


# Durations differ run to run (their counts do not); the pool's and process's figures
# are not the requests'; the hit path's own count is compared in the test.
_NOT_COMPARED = ("seconds", "storefront_db_pool", "process_", "python_", "hit_path")


def _counted(exposition: str) -> dict[str, float]:
    """Every sample of the metrics page but durations and gauges of the process."""
    samples = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            name = sample.name
            if any(part in name for part in _NOT_COMPARED) and not name.endswith("_count"):
                continue
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    return samples


def hit_path_answers(exposition: str) -> float:
    """`storefront_hit_path_answers_total` of a metrics page."""
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == "storefront_hit_path_answers_total":
                return sample.value
    raise AssertionError("storefront_hit_path_answers_total is not on the page")


LIVE_STEPS = [
    ("anonymous", PRODUCT, None, {}),
    ("anonymous, br", CATALOG, None, {"Accept-Encoding": "br"}),
    ("anonymous, gzip or zstd", CATALOG, None, {"Accept-Encoding": "gzip;q=0.4, zstd"}),
    ("customer", MINE, "customer", {"Accept": "application/graphql-response+json"}),
    ("admin, their id", ORDERS, "admin", {"X-Request-ID": "trace-me.1"}),
]


async def test_over_a_real_socket_the_path_answers_as_the_stack(
    db: Database, factory: Factory, tmp_path: Path
) -> None:
    """Two `storefront serve` processes, path on and off: the same answers over HTTP/1.1
    sockets (uvicorn's framing, Content-Length, chunked request bodies), and only the
    first counts answers of its hit path."""
    products = [await factory.product(name=f"Lamp {n}") for n in range(40)]
    customer = await factory.user(email="shopper@example.com")
    await factory.order(user_id=customer, items=[(products[0], 2, 1500)])
    tokens = {
        "customer": (
            await create_token(sessionmaker=db.sessionmaker, email="shopper@example.com")
        ).token,
        "admin": (
            await create_token(sessionmaker=db.sessionmaker, email="boss@example.com", role="admin")
        ).token,
    }
    variables = {"id": to_global_id("Product", products[0])}
    seen: dict[
        bool, tuple[list[tuple[str, int, dict[str, str], bytes]], dict[str, float], float]
    ] = {}
    for enabled in (True, False):
        async with redis_process(tmp_path) as redis:
            env = {
                **db.env,
                **cache_env("redis", redis.url),
                "HIT_PATH_ENABLED": str(enabled).lower(),
                "RATE_LIMIT_RESTORE_RATE": "0.001",
                "ADMIN_RATE_LIMIT_RESTORE_RATE": "0.001",
                # A token is looked up once per run, however slow the run: with the 5 s
                # default, a run slowed by a busy host looked one up again and counted one
                # statement more than the other (seen under -n 3: loader=other 5 != 6).
                "AUTH_CACHE_SECONDS": "600",
            }
            with live_server(env) as server:
                seen[enabled] = await asyncio.to_thread(_live_script, server, tokens, variables)
    on, off = seen[True], seen[False]
    for with_path, without in zip(on[0], off[0], strict=True):
        assert with_path == without, with_path[0]
    assert on[1] == off[1], "metrics"
    repeats = sum(1 for label, *_ in on[0] if not label.endswith("#0"))
    chunked = 2  # the chunked repeats of the last step go to the stack
    # Each step's repeats, but a first repeat may find only Redis knowing the key.
    assert len(LIVE_STEPS) <= on[2] <= repeats - chunked, on[2]
    assert off[2] == 0


def _live_script(
    server: LiveServer, tokens: dict[str, str], variables: dict[str, Any]
) -> tuple[list[tuple[str, int, dict[str, str], bytes]], dict[str, float], float]:
    answers = []
    with httpx.Client(timeout=30) as client:
        for label, query, who, headers in LIVE_STEPS:
            body = orjson.dumps(
                {"query": query, "variables": variables if query is PRODUCT else None}
            )
            sent = {"Content-Type": "application/json", **headers}
            if who is not None:
                sent["Authorization"] = f"Bearer {tokens[who]}"
            for n in range(3):
                answers.append(_live_answer(client, server, f"{label} #{n}", body, sent))
        # A chunked body (no Content-Length): the stack reads it, whatever its bytes.
        body = orjson.dumps({"query": PRODUCT, "variables": variables})
        for n in range(3):
            answers.append(
                _live_answer(
                    client,
                    server,
                    f"chunked #{n}",
                    iter([body[:10], body[10:]]),
                    {"Content-Type": "application/json"},
                )
            )
        page = client.get(f"{server.url}/metrics").text
    return answers, _counted(page), hit_path_answers(page)


def _live_answer(
    client: httpx.Client, server: LiveServer, label: str, body: Any, headers: dict[str, str]
) -> tuple[str, int, dict[str, str], bytes]:
    request = client.build_request("POST", server.graphql, content=body, headers=headers)
    response = client.send(request, stream=True)
    raw = b"".join(response.iter_raw())
    response.close()
    answer = dict(response.headers)
    for name in _CLOCKED:  # derived from the time since a refill: compared in process
        assert answer.pop(name, "0").isdigit(), (label, name)
    for name in ("date", "age"):  # the two processes' clocks: Age only in the next line
        answer.pop(name, None)
    answer["cache-control"] = re.sub(r"max-age=\d+", "max-age=N", answer.get("cache-control", ""))
    request_id = answer.pop("x-request-id")
    given = headers.get("X-Request-ID")
    assert request_id == given if given else REQUEST_ID.match(request_id), (label, request_id)
    return label, response.status_code, answer, _decoded(raw, answer.get("content-encoding"))


async def test_a_body_in_several_messages_is_read_whole_and_handed_on_unread(
    db: Database, factory: Factory, tmp_path: Path, taken: list[bool]
) -> None:
    """ASGI may deliver a body in parts: the path reads them all, and when it declines,
    the stack receives the very same messages."""
    product = to_global_id("Product", await factory.product(name="Lamp"))
    async with _app(db, "memory", tmp_path, enabled=True) as api:
        known = orjson.dumps({"query": NAME, "variables": {"id": product}})
        assert (await api.client.post("/graphql", content=known, headers=JSON)).status_code == 200
        hit = await _in_parts(api, known)
        unknown = orjson.dumps({"query": PRODUCT, "variables": {"id": product}})
        taken.clear()
        miss = await _in_parts(api, unknown)
    assert hit[0] == 200
    assert hit[1][b"x-cache"] == b"HIT"
    assert orjson.loads(hit[2])["data"] == {"product": {"name": "Lamp"}}
    assert miss[0] == 200
    assert miss[1][b"x-cache"] == b"MISS"
    assert orjson.loads(miss[2])["data"]["product"]["name"] == "Lamp"
    assert taken == [False]  # read, declined, and answered by the stack


JSON = {"Content-Type": "application/json"}


async def _in_parts(api: Api, body: bytes) -> tuple[int, dict[bytes, bytes], bytes]:
    """POST `body` straight to the app's ASGI callable, in three `http.request` messages."""
    third = len(body) // 3
    parts = [body[:third], body[third : 2 * third], body[2 * third :]]
    messages = [
        {"type": "http.request", "body": part, "more_body": n < 2} for n, part in enumerate(parts)
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"test"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 5000),
        "server": ("test", 80),
    }
    await api.app(scope, receive, send)
    assert not messages, "a message was left unread"
    start = sent[0]
    content = b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], dict(start["headers"]), content
