"""Bytes and CPU of each content coding and level on the real order-dashboard answer.

Fetches the admin's dashboard (`orders(first: 50)`, the `medium` seed) once through the
app, uncoded, then codes those bytes with every codec at every level shown: coded size,
ratio, and CPU µs per answer (process time, best of `--rounds` rounds of a loop long
enough to time). Finally the same request through the app with the default levels, as a
client accepting each coding gets it. COMPRESSION_*_LEVEL settings take their defaults
from this table (see server/http/compression.py and README "Compression").

    .venv/bin/python -m bench.prepare             # once: create and seed bench_medium
    .venv/bin/python -m bench.compression [--database-url URL] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable

from bench.common import DASHBOARD, DEFAULT_DATABASE_URL, admin_token, in_process_app
from server.http import codecs
from server.http.codecs import Codec

LEVELS: dict[str, tuple[int, ...]] = {
    "zstd": (1, 2, 3, 4, 5, 6, 9, 12, 19),
    "br": (0, 1, 2, 3, 4, 5, 6, 7, 9, 11),
    "gzip": (1, 2, 3, 4, 5, 6, 9),
}
FACTORIES: dict[str, Callable[[int], Codec]] = {
    "zstd": codecs.zstd,
    "br": codecs.br,
    "gzip": codecs.gzip,
}
MIN_LOOP_SECONDS = 0.05


def cpu_us(compress: Callable[[bytes], bytes], body: bytes, rounds: int) -> float:
    """CPU µs of one `compress(body)`: the best round's mean."""
    start = time.process_time()
    loops = 0
    while time.process_time() - start < MIN_LOOP_SECONDS:
        compress(body)
        loops += 1
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(loops):
            compress(body)
        best = min(best, (time.process_time() - start) / loops)
    return best * 1e6


async def main(database_url: str, rounds: int) -> None:
    async with in_process_app(database_url, {"CACHE_ENABLED": "false"}) as app:
        token = await admin_token(app.app)
        request = {"query": DASHBOARD, "variables": {"n": 50}}
        headers = {"Authorization": f"Bearer {token}", "Accept-Encoding": "identity"}
        response = await app.client.post("/graphql", json=request, headers=headers)
        response.raise_for_status()
        body = response.content
        print(f"dashboard answer (orders(first: 50), medium seed): {len(body):,} bytes of JSON\n")
        print(f"{'codec':<6} {'level':>5} {'bytes':>9} {'ratio':>7} {'CPU µs':>9}")
        for name, levels in LEVELS.items():
            for level in levels:
                codec = FACTORIES[name](level)
                coded = codec.compress(body)
                micros = cpu_us(codec.compress, body, rounds)
                ratio = len(body) / len(coded)
                print(f"{name:<6} {level:>5} {len(coded):>9,} {ratio:>6.1f}x {micros:>9.0f}")
        print("\nthrough the app, default levels (COMPRESSION_*_LEVEL):")
        for coding in ("zstd", "br", "gzip", "identity"):
            headers["Accept-Encoding"] = coding
            async with app.client.stream("POST", "/graphql", json=request, headers=headers) as sent:
                wire = b"".join([part async for part in sent.aiter_raw()])
                sent_as = sent.headers.get("content-encoding", "-")
                print(f"  {coding:<8} {sent_as:<5} {len(wire):>9,} bytes")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    asyncio.run(main(options.database_url, options.rounds))
