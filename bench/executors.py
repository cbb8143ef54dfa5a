"""The compiled executor against graphql-core's, on the issue's four workloads.

Two in-process apps over the same PostgreSQL database (result cache off), one per
`GRAPHQL_EXECUTION`, take turns request by request; the figure is the process CPU
per request (time.process_time, which includes the HTTP layer both share), the
median of `--rounds` interleaved rounds, and the ratio. With `--profile`, cProfile's
function calls per request, which do not depend on the machine's load.

    .venv/bin/python -m bench.prepare        # once: create and seed bench_medium
    .venv/bin/python -m bench.executors [--database-url URL] [--rounds 5] [--requests 20]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bench.common import DEFAULT_DATABASE_URL, InProcessApp, admin_token, in_process_app

DASHBOARD = """query Dashboard($n: Int!) { orders(first: $n) { nodes {
  id status totalCents createdAt customer { id name }
  items { quantity unitPriceCents product { id name priceCents averageRating category { name } } }
} } }"""
CATALOG = """query Catalog { products(first: 50) { nodes {
  id name priceCents averageRating category { name }
  reviews(first: 3) { nodes { id rating body author { id name } } }
} } }"""
PRODUCT_PAGE = """query ProductPage($id: ID!) { product(id: $id) {
  id name description priceCents averageRating reviewCount category { id name }
  reviews(first: 10) { nodes { id rating body createdAt author { id name } } }
} }"""
CUSTOMER_HISTORY = """query History { viewer { orders(first: 10) { nodes {
  id status totalCents createdAt items { quantity unitPriceCents product { id name } }
} } } }"""

EXECUTIONS = ("graphql-core", "compiled")


async def _workloads(app: InProcessApp) -> dict[str, tuple[str, dict[str, Any], str | None]]:
    admin = await admin_token(app.app)
    listing = await app.post("{ products(first: 1) { nodes { id } } }", {}, None)
    product_id = listing["products"]["nodes"][0]["id"]
    orders = await app.post("{ orders(first: 1) { nodes { customer { email } } } }", {}, admin)
    email = orders["orders"]["nodes"][0]["customer"]["email"]
    from resolvers.tokens import create_token

    issued = await create_token(sessionmaker=app.services.sessionmaker, email=email)
    return {
        "dashboard": (DASHBOARD, {"n": 50}, admin),
        "catalog": (CATALOG, {}, None),
        "product page": (PRODUCT_PAGE, {"id": product_id}, None),
        "customer history": (CUSTOMER_HISTORY, {}, issued.token),
    }


async def _cpu_per_request(call: Callable[[], Awaitable[Any]], requests: int) -> float:
    start = time.process_time()
    for _ in range(requests):
        await call()
    return (time.process_time() - start) / requests * 1000


async def _calls_per_request(call: Callable[[], Awaitable[Any]], requests: int) -> int:
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(requests):
        await call()
    profile.disable()
    stats = pstats.Stats(profile)
    return int(stats.total_calls / requests)  # type: ignore[attr-defined]


async def main(database_url: str, rounds: int, requests: int, profile: bool) -> None:
    env = {"CACHE_ENABLED": "false"}
    async with (
        in_process_app(database_url, {**env, "GRAPHQL_EXECUTION": "graphql-core"}) as core,
        in_process_app(database_url, {**env, "GRAPHQL_EXECUTION": "compiled"}) as compiled,
    ):
        apps = {"graphql-core": core, "compiled": compiled}
        workloads = await _workloads(core)
        samples: dict[tuple[str, str], list[float]] = {}
        calls: dict[tuple[str, str], int] = {}
        for query, variables, token in workloads.values():
            for app in apps.values():
                first = await app.post(query, variables, token)  # warm: plans, statements
                assert first == await apps["graphql-core"].post(query, variables, token)
        for _ in range(rounds):
            for name, (query, variables, token) in workloads.items():
                for execution, app in apps.items():

                    def call(
                        app: InProcessApp = app,
                        query: str = query,
                        variables: dict[str, Any] = variables,
                        token: str | None = token,
                    ) -> Awaitable[Any]:
                        return app.post(query, variables, token)

                    sample = await _cpu_per_request(call, requests)
                    samples.setdefault((name, execution), []).append(sample)
        if profile:
            for name, (query, variables, token) in workloads.items():
                for execution, app in apps.items():

                    def call(
                        app: InProcessApp = app,
                        query: str = query,
                        variables: dict[str, Any] = variables,
                        token: str | None = token,
                    ) -> Awaitable[Any]:
                        return app.post(query, variables, token)

                    calls[(name, execution)] = await _calls_per_request(call, requests)
    print(f"CPU ms per request (in-process, HTTP included), median of {rounds} interleaved rounds")
    print(f"{'workload':<18} {'graphql-core':>13} {'compiled':>10} {'ratio':>7}", end="")
    print(f" {'calls core':>11} {'calls compiled':>15}" if profile else "")
    for name in workloads:
        core_ms = statistics.median(samples[(name, "graphql-core")])
        compiled_ms = statistics.median(samples[(name, "compiled")])
        line = f"{name:<18} {core_ms:>13.2f} {compiled_ms:>10.2f} {compiled_ms / core_ms:>7.2f}"
        if profile:
            line += f" {calls[(name, 'graphql-core')]:>11} {calls[(name, 'compiled')]:>15}"
        print(line)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--profile", action="store_true")
    arguments = parser.parse_args()
    asyncio.run(
        main(arguments.database_url, arguments.rounds, arguments.requests, arguments.profile)
    )
