"""Product name search at `medium` scale, without and with the trigram index (migration 0002).

For each state (migrated to 0001: no index; to head: `ix_products_name_trgm`)
it runs `products(filter: { search })` through the real app in-process for a
few patterns (common, selective, no match, and the longest allowed) and prints:

- the median and p95 ms of the whole HTTP request (uncached), beside the same
  request without a search for reference: on a busy machine most of it is not
  the search;
- the statements that request sent with the search (page and count), each
  prepared and run on its generic plan, as asyncpg's statement cache ends up
  running them: their plans (EXPLAIN ANALYZE: node types, indexes) and the
  median ms of both together. The verdict holds that figure to 20 ms.

The database is left at head. Needs the bench database (`python -m bench.prepare`).

    .venv/bin/python -m bench.search [--database-url URL] [--runs 40]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from dataclasses import dataclass
from typing import Any

import asyncpg

from bench.common import DEFAULT_DATABASE_URL, asyncpg_dsn, in_process_app
from bench.explain import PlanSummary, walk
from resolvers.catalog import MAX_SEARCH_LENGTH
from server.cli.migrate import downgrade, upgrade

QUERY = (
    "query($s: String) { products(first: 20, filter: { search: $s }) {"
    " totalCount nodes { id name priceCents } } }"
)
PATTERNS: dict[str, str | None] = {
    "no search (the plain listing, for reference)": None,
    "common (oak)": "oak",
    "selective (vintage oak b)": "vintage oak b",
    "no match (zebra)": "zebra",
    f"longest allowed ({MAX_SEARCH_LENGTH} chars, no match)": ("qz" * MAX_SEARCH_LENGTH)[
        :MAX_SEARCH_LENGTH
    ],
}
LIMIT_MS = 20.0


def _literal(value: Any) -> str:
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, int):
        return str(value)
    raise TypeError(f"no literal for {value!r}")


async def _sql(dsn: str, statements: list[tuple[str, Any]], runs: int) -> tuple[float, list[str]]:
    """The median ms of the search's statements together, run as asyncpg ends up running
    them (a prepared statement on its generic plan), and one line per statement's plan."""
    conn = await asyncpg.connect(dsn)
    lines = []
    try:
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        executes = []
        for number, (statement, parameters) in enumerate(statements):
            await conn.execute(f"PREPARE search_{number} AS {statement}")
            execute = f"EXECUTE search_{number}({', '.join(map(_literal, parameters))})"
            raw = await conn.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {execute}")
            plan = json.loads(raw)[0]
            summary = PlanSummary()
            walk(plan["Plan"], summary, {})
            kind = "count" if "count(" in statement else "page"
            lines.append(
                f"    {kind:5} {', '.join(sorted(summary.node_types))} | "
                f"{', '.join(sorted(summary.indexes)) or 'no index'}"
            )
            executes.append(execute)
        timings = []
        for _ in range(runs):
            started = time.perf_counter()
            for execute in executes:
                await conn.fetch(execute)
            timings.append((time.perf_counter() - started) * 1000)
    finally:
        await conn.close()
    return statistics.median(timings), lines


@dataclass
class Figures:
    http_median: float
    http_p95: float
    sql_median: float | None
    plans: list[str]


async def _measure(database_url: str, runs: int) -> dict[str, Figures]:
    results: dict[str, Figures] = {}
    dsn = asyncpg_dsn(database_url)
    # Uncached: every request runs its statements.
    async with in_process_app(database_url, {"CACHE_ENABLED": "false"}) as api:
        for label, pattern in PATTERNS.items():
            await api.post(QUERY, {"s": pattern}, None)  # warm: prepared statements, caches
            api.recorder.clear()
            await api.post(QUERY, {"s": pattern}, None)
            searched = [(s, tuple(p)) for s, p in api.recorder.statements if "ILIKE" in s.upper()]
            timings = []
            for _ in range(runs):
                started = time.perf_counter()
                await api.post(QUERY, {"s": pattern}, None)
                timings.append((time.perf_counter() - started) * 1000)
            sql, plans = await _sql(dsn, searched, runs) if searched else (None, [])
            p95 = statistics.quantiles(timings, n=20)[-1]
            results[label] = Figures(statistics.median(timings), p95, sql, plans)
    return results


async def run(database_url: str, runs: int) -> int:
    dsn = asyncpg_dsn(database_url)
    conn = await asyncpg.connect(dsn)
    try:
        products = await conn.fetchval("SELECT count(*) FROM products")
    finally:
        await conn.close()
    print(f"{products} products; {runs} requests per pattern; median / p95 of the HTTP request")
    worst = 0.0
    for state, revision in (("without the trigram index (0001)", "0001"), ("with it", "head")):
        await (downgrade if revision == "0001" else upgrade)(database_url, revision)
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("ANALYZE products")
            has_index = await conn.fetchval(
                "SELECT 1 FROM pg_indexes WHERE indexname = 'ix_products_name_trgm'"
            )
        finally:
            await conn.close()
        print(f"\n{state}: ix_products_name_trgm {'present' if has_index else 'absent'}")
        for label, figures in (await _measure(database_url, runs)).items():
            sql = "" if figures.sql_median is None else f"   SQL {figures.sql_median:6.2f} ms"
            print(
                f"  {label:<45} HTTP median {figures.http_median:6.2f} ms"
                f"   p95 {figures.http_p95:6.2f} ms{sql}"
            )
            print("\n".join(figures.plans))
            if has_index and figures.sql_median is not None:
                worst = max(worst, figures.sql_median)
    verdict = "PASS" if worst < LIMIT_MS else "FAIL"
    print(
        f"\n{verdict}: with the index, the slowest search's SQL (page and count, median)"
        f" takes {worst:.2f} ms; the limit is {LIMIT_MS:g} ms"
    )
    return 0 if verdict == "PASS" else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()
    raise SystemExit(asyncio.run(run(args.database_url, args.runs)))


if __name__ == "__main__":
    main()
