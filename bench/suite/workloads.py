"""The four workloads of issue 12's table, and the data they ask for.

Each is one GraphQL request (document, variables, who asks) run uncached and as a
cached hit; the bare endpoint answers the dashboard's bytes. The fixtures (a product
with many reviews, a customer with many orders, tokens) come from the seeded
`medium` database, chosen deterministically so every run asks the same.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import asyncpg

from bench.common import admin_token, asyncpg_dsn, in_process_app
from schema.global_id import to_global_id

DASHBOARD = """query Dashboard($n: Int!) { orders(first: $n) { edges { node {
  id status totalCents createdAt
  customer { id name }
  items { quantity unitPriceCents
    product { id name priceCents averageRating category { name } } }
} } } }"""

CATALOG = """query Catalog($n: Int!) { products(first: $n) { edges { node {
  id name priceCents averageRating
  category { name }
  reviews(first: 3) { edges { node { id rating body author { id name } } } }
} } } }"""

PRODUCT_PAGE = """query ProductPage($id: ID!) { product(id: $id) {
  id name description priceCents averageRating reviewCount
  category { name }
  reviews(first: 10) { edges { node { id rating body createdAt author { id name } } } }
} }"""

CUSTOMER_ORDERS = """query CustomerOrders { viewer { id name
  orders(first: 10) { edges { node {
    id status totalCents createdAt
    items { quantity unitPriceCents product { id name priceCents } }
  } } }
} }"""


@dataclass(frozen=True)
class Workload:
    """One request, sent as is by every client."""

    name: str
    query: str
    variables: dict[str, Any]
    token: str  # "" for anonymous

    @property
    def body(self) -> str:
        return json.dumps({"query": self.query, "variables": self.variables})


@dataclass(frozen=True)
class Fixtures:
    admin_token: str
    customer_token: str
    product_id: int


async def fixtures(database_url: str) -> Fixtures:
    """The product with the most reviews, and a token for the customer with the most orders."""
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        product_id = await conn.fetchval(
            "SELECT product_id FROM reviews GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1"
        )
        email = await conn.fetchval(
            "SELECT u.email FROM orders o JOIN users u ON u.id = o.user_id"
            " WHERE u.role = 'customer' GROUP BY u.id, u.email"
            " ORDER BY count(*) DESC, u.id LIMIT 1"
        )
    finally:
        await conn.close()
    if product_id is None or email is None:
        raise SystemExit("bench_medium holds no reviews or orders: run `python -m bench.prepare`")
    from resolvers.tokens import create_token

    async with in_process_app(database_url, {"CACHE_ENABLED": "false"}) as api:
        admin = await admin_token(api.app)
        issued = await create_token(sessionmaker=api.services.sessionmaker, email=email)
    return Fixtures(admin, issued.token, int(product_id))


def workloads(given: Fixtures) -> list[Workload]:
    """The four requests, in the order of the issue's table."""
    return [
        Workload("dashboard", DASHBOARD, {"n": 50}, given.admin_token),
        Workload("catalog", CATALOG, {"n": 50}, ""),
        Workload(
            "product page",
            PRODUCT_PAGE,
            {"id": to_global_id("Product", given.product_id)},
            "",
        ),
        Workload("customer orders", CUSTOMER_ORDERS, {}, given.customer_token),
    ]
