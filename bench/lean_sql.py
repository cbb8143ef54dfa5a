"""The lean read path (loaders/prepared.py) against SQLAlchemy's execution, per dashboard request.

Runs the 50-order dashboard in-process (PostgreSQL, result cache off, one client),
switching the loaders between asyncpg Records and SQLAlchemy's execution in
interleaved rounds of one process: CPU ms per request (medians, and their ratio),
then under cProfile the calls per request and the SQL layer's share of CPU
(own time of sqlalchemy, asyncpg and greenlet, a C function's time counted to
the package that called it).

    .venv/bin/python -m bench.prepare --database-url postgresql://postgres@127.0.0.1:5432/bench_sql
    .venv/bin/python -m bench.lean_sql --database-url postgresql://postgres@127.0.0.1:5432/bench_sql
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import re
import statistics
import time
from collections import defaultdict
from typing import Any

from bench.common import DASHBOARD, DEFAULT_DATABASE_URL, admin_token, in_process_app
from bench.profile import run_requests
from loaders import prepared

SQL_LAYER = ("sqlalchemy", "asyncpg", "greenlet")
_LEAN = prepared.uses_lean_reads


def use_lean_reads(lean: bool) -> None:
    prepared.uses_lean_reads = _LEAN if lean else (lambda _connection: False)  # type: ignore[assignment]


def owner(filename: str) -> str:
    if filename.startswith(("~", "<")):
        return "C"
    if match := re.search(r"site-packages/([^/]+)", filename):
        return match[1].removesuffix(".py")
    return "other"


def sql_layer(profile: cProfile.Profile, requests: int) -> dict[str, float]:
    own: dict[str, float] = defaultdict(float)
    calls: dict[str, int] = defaultdict(int)
    raw: dict[Any, Any] = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    for (filename, _line, _name), (_cc, ncalls, tottime, _ct, callers) in raw.items():
        if owner(filename) == "C" and callers:
            for (caller, _l, _n), (c_calls, _c, c_time, _t) in callers.items():
                own[owner(caller)] += c_time
                calls[owner(caller)] += c_calls
        else:
            own[owner(filename)] += tottime
            calls[owner(filename)] += ncalls
    return {
        "calls/request": round(sum(calls.values()) / requests),
        "SQL-layer calls/request": round(sum(calls[k] for k in SQL_LAYER) / requests),
        "SQL-layer % of CPU": round(100 * sum(own[k] for k in SQL_LAYER) / sum(own.values()), 1),
    }


async def run(args: argparse.Namespace) -> None:
    async with in_process_app(args.database_url, {"CACHE_ENABLED": "false"}) as api:
        token = await admin_token(api.app)
        app = api.client._transport.app  # type: ignore[attr-defined]
        body = json.dumps({"query": DASHBOARD, "variables": {"n": 50}}).encode()
        cpu: dict[bool, list[float]] = {True: [], False: []}
        for lean in (True, False):
            use_lean_reads(lean)
            await run_requests(app, body, token, 30, 1)
        for _ in range(args.rounds):
            for lean in (True, False):
                use_lean_reads(lean)
                started = time.process_time()
                await run_requests(app, body, token, args.requests, 1)
                cpu[lean].append((time.process_time() - started) * 1000 / args.requests)
        for lean in (False, True):
            use_lean_reads(lean)
            profile = cProfile.Profile(time.process_time)
            profile.enable()
            await run_requests(app, body, token, args.requests, 1)
            profile.disable()
            name = "asyncpg Records " if lean else "SQLAlchemy rows "
            print(f"{name}: {statistics.median(cpu[lean]):.2f} ms CPU/request (median of")
            print(f"  {args.rounds} interleaved), profiled: {sql_layer(profile, args.requests)}")
        ratio = statistics.median(cpu[True]) / statistics.median(cpu[False])
        print(f"CPU per request, lean / SQLAlchemy: {ratio:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=7)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
