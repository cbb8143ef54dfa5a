"""Statements per request, counted in-process, for the code on PYTHONPATH.

Run as a script (by path) so that it measures whichever checkout PYTHONPATH names:
it imports nothing of the bench package, only the app it counts. Reads
{"database_url": ..., "workloads": [{"name", "query", "variables", "token"}]} on
stdin; writes {name: {"uncached": n, "cached": n}} on stdout: the statements of the
second identical request, with the result cache off, then on (in-process, so the
second request is a hit).
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from sqlalchemy import event

from server.app import create_app
from server.services import services_of
from server.settings import Settings

UNTHROTTLED = {
    "RATE_LIMIT_MAXIMUM": "1000000000",
    "RATE_LIMIT_RESTORE_RATE": "1000000000",
    "ADMIN_RATE_LIMIT_MAXIMUM": "1000000000",
    "ADMIN_RATE_LIMIT_RESTORE_RATE": "1000000000",
}


async def count(database_url: str, workloads: list[dict[str, Any]], cache: bool) -> dict[str, int]:
    env = {"DATABASE_URL": database_url, "LOG_LEVEL": "warning", **UNTHROTTLED}
    env["CACHE_ENABLED"] = "true" if cache else "false"
    app = create_app(Settings.from_env(env))
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    counts: dict[str, int] = {}
    async with LifespanManager(app) as manager:
        event.listen(services_of(app).engine.sync_engine, "before_cursor_execute", record)
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for workload in workloads:
                token = workload["token"]
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                body = {"query": workload["query"], "variables": workload["variables"]}
                for _ in range(2):  # the first warms (and fills the cache)
                    statements.clear()
                    response = await client.post("/graphql", json=body, headers=headers)
                    answer = response.json()
                    if response.status_code != 200 or answer.get("errors"):
                        raise SystemExit(f"{workload['name']}: {response.status_code} {answer}")
                counts[workload["name"]] = len(statements)  # of the second request
    return counts


async def main() -> None:
    given = json.load(sys.stdin)
    uncached = await count(given["database_url"], given["workloads"], cache=False)
    cached = await count(given["database_url"], given["workloads"], cache=True)
    json.dump(
        {name: {"uncached": uncached[name], "cached": cached[name]} for name in uncached},
        sys.stdout,
    )


if __name__ == "__main__":
    asyncio.run(main())
