"""Prepare the benchmark database: create it if missing, migrate, seed if empty, VACUUM ANALYZE.

Prints how long the seed took (nothing is re-seeded when the database holds data).
VACUUM as well as ANALYZE: it sets the visibility map that index-only scans rely
on, the state autovacuum reaches in production (it may be off on a bench server),
so plans do not depend on when autovacuum last ran.

    .venv/bin/python -m bench.prepare [--database-url URL] [--scale medium]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from bench.common import DEFAULT_DATABASE_URL, asyncpg_dsn
from server.cli.migrate import upgrade
from server.cli.seed import SCALES, seed
from server.database import create_engine
from server.settings import Settings


async def create_database_if_missing(dsn: str) -> bool:
    """Create the database named in `dsn` (via the `postgres` database); True if created."""
    parts = urlsplit(dsn)
    name = parts.path.lstrip("/")
    if not name.replace("_", "").isalnum():
        raise SystemExit(f"refusing an unusual database name: {name!r}")
    admin = await asyncpg.connect(urlunsplit(parts._replace(path="/postgres")))
    try:
        if await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            return False
        await admin.execute(f'CREATE DATABASE "{name}"')
        return True
    finally:
        await admin.close()


async def prepare(database_url: str, scale: str) -> None:
    dsn = asyncpg_dsn(database_url)
    created = await create_database_if_missing(dsn)
    print(f"database: {urlsplit(dsn).path.lstrip('/')} ({'created' if created else 'exists'})")
    await upgrade(database_url)
    print("migrated to head")

    conn = await asyncpg.connect(dsn)
    try:
        users = await conn.fetchval("SELECT count(*) FROM users")
    finally:
        await conn.close()
    if users:
        print(f"already seeded ({users} users): seed skipped")
    else:
        engine = create_engine(Settings.from_env({"DATABASE_URL": database_url}))
        try:
            started = time.perf_counter()
            counts = await seed(engine=engine, scale=scale)
            elapsed = time.perf_counter() - started
        finally:
            await engine.dispose()
        print("seeded: " + ", ".join(f"{n} {table}" for table, n in counts.items()))
        print(f"seed time ({scale}): {elapsed:.1f} s")

    conn = await asyncpg.connect(dsn)
    try:
        started = time.perf_counter()
        await conn.execute("VACUUM (ANALYZE)")
        print(f"VACUUM (ANALYZE): {time.perf_counter() - started:.1f} s")
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--scale", default="medium", choices=sorted(SCALES))
    args = parser.parse_args()
    asyncio.run(prepare(args.database_url, args.scale))


if __name__ == "__main__":
    main()
