"""`make test`: the suite's two legs side by side, one pytest process each.

With TEST_DATABASE_URL set the suite runs every backend case; on a 2-core CI
machine that is more than 20 minutes in one process, whose CPU is mostly one
core. The cases split cleanly by backend: `--leg postgresql` (PostgreSQL and
PgBouncer) and `--leg sqlite` (SQLite, and the cases of no backend). Each leg
gets state of its own so the two never meet:

- the PostgreSQL leg keeps TEST_DATABASE_URL and TEST_REDIS_URL;
- the other leg gets a database of its own for the tests that read
  TEST_DATABASE_URL directly (`<name>_leg`, made empty here, dropped after) and
  the next Redis database number.

Everything else the tests start (servers, PgBouncer, redis-server, clusters,
network namespaces) is on free ports and temporary paths already. The PostgreSQL
leg's output streams; the other leg's is printed when it ends. Without
TEST_DATABASE_URL there is one leg and this is plain pytest.

    .venv/bin/python -m tests.legs [pytest arguments]
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time

import asyncpg
from sqlalchemy.engine import make_url


def _other_redis(url: str) -> str:
    parsed = make_url(url.replace("redis://", "postgresql://", 1))
    number = int(parsed.database or 0)
    other = number - 1 if number > 0 else 1
    return url.rsplit("/", 1)[0] + f"/{other}" if parsed.database else url.rstrip("/") + f"/{other}"


async def _recreate(url: str, name: str, *, drop_only: bool = False) -> None:
    admin = make_url(url).set(drivername="postgresql", database="postgres")
    connection = await asyncpg.connect(admin.render_as_string(hide_password=False))
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop_only:
            await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


def main(arguments: list[str]) -> int:
    pytest = [sys.executable, "-m", "pytest", *arguments]
    database_url = os.environ.get("TEST_DATABASE_URL")
    if not database_url:
        return subprocess.call(pytest)
    leg_database = f"{make_url(database_url).database}_leg"
    leg_url = str(make_url(database_url).set(database=leg_database).render_as_string(False))
    asyncio.run(_recreate(database_url, leg_database))
    sqlite_env = dict(os.environ, TEST_DATABASE_URL=leg_url)
    if redis_url := os.environ.get("TEST_REDIS_URL"):
        sqlite_env["TEST_REDIS_URL"] = _other_redis(redis_url)
    started = time.monotonic()
    try:
        with tempfile.TemporaryFile("w+") as log:
            sqlite_leg = subprocess.Popen(
                [*pytest, "--leg", "sqlite"], env=sqlite_env, stdout=log, stderr=subprocess.STDOUT
            )
            print(
                "tests/legs.py: the sqlite leg runs beside this one; its output follows at its end"
            )
            postgresql = subprocess.call([*pytest, "--leg", "postgresql"])
            sqlite = sqlite_leg.wait()
            log.seek(0)
            print("\n===== the sqlite leg (SQLite, and the cases of no backend) =====")
            sys.stdout.write(log.read())
    finally:
        asyncio.run(_recreate(database_url, leg_database, drop_only=True))
    print(
        f"tests/legs.py: postgresql leg exit {postgresql}, sqlite leg exit {sqlite},"
        f" {time.monotonic() - started:.0f} s in all"
    )
    # 5: no test collected, as when the arguments select cases of one leg only.
    codes = [code for code in (postgresql, sqlite) if code != 5] or [5]
    return max(codes)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
