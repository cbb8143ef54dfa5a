"""CPU per cached hit in each coding: compressed per hit (before) vs stored compressed (after).

In process (ASGI, no sockets) over the `medium` seed: the order dashboard of an admin
(50 newest orders, private, ~27 KB of JSON) is stored in the result cache, then hit
with `Accept-Encoding: zstd`, `br`, `gzip` and `identity`. "before" stores the entry
without its coded streams, so the compression middleware codes every hit, as before
this change; "after" stores them, so a hit only closes the stored stream. The two
alternate, round after round (each round re-stores the entry with a `no-cache`
request), and the figures are medians over all rounds of the CPU time
(`time.process_time`) of one whole request: app, middleware and the client's sending.
The client reads the coded bytes raw: no decoding is counted.

It also prints what storing the streams costs, once per miss: the three codings of
the dashboard's answer, next to the CPU of the miss itself.

    .venv/bin/python -m bench.prepare          # once: create and seed bench_medium
    .venv/bin/python -m bench.coded_hits [--database-url URL] [--redis-url URL]
        [--rounds 20] [--hits 50]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

import httpx

from bench.common import DASHBOARD, DEFAULT_DATABASE_URL, admin_token, in_process_app
from server.http.codecs import configured_codecs
from server.http.open_streams import open_streams

CODINGS = ("zstd", "br", "gzip", "identity")


async def request_cpu(
    client: httpx.AsyncClient, body: dict[str, Any], headers: dict[str, str]
) -> tuple[float, httpx.Response]:
    start = time.process_time()
    request = client.build_request("POST", "/graphql", json=body, headers=headers)
    response = await client.send(request, stream=True)
    raw = b"".join([part async for part in response.aiter_raw()])
    await response.aclose()
    spent = time.process_time() - start
    response._content = raw
    return spent, response


async def main(database_url: str, redis_url: str | None, rounds: int, hits: int) -> None:
    env = {"CACHE_ENABLED": "true", **({"REDIS_URL": redis_url} if redis_url else {})}
    async with in_process_app(database_url, env) as app:
        token = await admin_token(app.app)
        caches = app.services.caches
        assert caches is not None
        precode = caches.responses.precode
        assert precode is not None, "compression is off: nothing to compare"
        body = {"query": DASHBOARD, "variables": {"n": 50}}
        auth = {"Authorization": f"Bearer {token}"}
        cpu: dict[tuple[str, str], list[float]] = {}
        sizes: dict[tuple[str, str], int] = {}
        misses: list[float] = []
        answer = b""
        for round_number in range(rounds):
            for mode in ("before", "after") if round_number % 2 == 0 else ("after", "before"):
                caches.responses.precode = None if mode == "before" else precode
                spent, fresh = await request_cpu(
                    app.client,
                    body,
                    auth | {"Cache-Control": "no-cache", "Accept-Encoding": "identity"},
                )
                assert fresh.headers["x-cache"] == "MISS", fresh.headers
                misses.append(spent)
                answer = fresh.content
                for _ in range(hits):
                    for coding in CODINGS:
                        spent, hit = await request_cpu(
                            app.client, body, auth | {"Accept-Encoding": coding}
                        )
                        assert hit.headers["x-cache"] == "HIT"
                        assert hit.headers.get("content-encoding", "identity") == coding
                        cpu.setdefault((mode, coding), []).append(spent)
                        sizes[(mode, coding)] = len(hit.content)
        caches.responses.precode = precode
        print(
            f"store: {'redis' if redis_url else 'in process'}; answer {len(answer)} bytes; "
            f"{rounds} rounds x {hits} hits per coding, interleaved; median CPU per request"
        )
        print(
            f"{'coding':>9} {'before µs':>10} {'after µs':>9} {'saved µs':>9} "
            f"{'bytes before':>13} {'after':>7}"
        )
        for coding in CODINGS:
            before = statistics.median(cpu[("before", coding)]) * 1e6
            after = statistics.median(cpu[("after", coding)]) * 1e6
            print(
                f"{coding:>9} {before:10.0f} {after:9.0f} {before - after:9.0f} "
                f"{sizes[('before', coding)]:13d} {sizes[('after', coding)]:7d}"
            )
        stored = answer[: answer.rindex(b',"extensions":')] + b"}"
        start = time.process_time()
        codecs = configured_codecs(app.services.settings)
        assert codecs is not None
        for _ in range(200):
            open_streams(codecs, stored, min_bytes=0)
        coding_cost = (time.process_time() - start) / 200 * 1e6
        print(
            f"storing the three streams: {coding_cost:.0f} µs once per stored answer; "
            f"a miss costs {statistics.median(misses) * 1e6:.0f} µs CPU"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--redis-url", default=None)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--hits", type=int, default=50)
    args = parser.parse_args()
    asyncio.run(main(args.database_url, args.redis_url, args.rounds, args.hits))
