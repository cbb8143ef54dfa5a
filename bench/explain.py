"""Prove that every statement the API issues at `medium` scale is served by an index.

Runs GraphQL requests covering every read access path of the API (each product
sort and filter, nested pages, counts, `after` cursors, admin and customer
views, node/nodes) through the real app in-process, records each SQL statement
with its parameters, then EXPLAINs each on PostgreSQL with the same parameters.
Fails (exit 1) on a `Seq Scan` of orders, order_items or reviews, and on a name
search (ILIKE) that does not use the trigram index where migration 0002 built
it; prints one row per statement: its text, the plan's node types and the
indexes it uses.
Mutations are not exercised (they would change the benchmark data).

    .venv/bin/python -m bench.explain [--database-url URL] [--analyze]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from bench.common import DASHBOARD, DEFAULT_DATABASE_URL, admin_token, asyncpg_dsn, in_process_app
from resolvers.tokens import create_token
from schema.global_id import to_global_id

GUARDED_TABLES = frozenset({"orders", "order_items", "reviews"})
SEARCH_INDEX = "ix_products_name_trgm"
PAGE = "totalCount pageInfo { hasNextPage endCursor }"
SORTS = ("NEWEST", "PRICE_ASC", "PRICE_DESC", "NAME")


@dataclass(frozen=True)
class Request:
    """A GraphQL request; with `cursor_at`, it runs again with `$after` set to the
    first non-null `endCursor` under that path of the first response."""

    name: str
    query: str
    variables: dict[str, Any]
    token: str | None
    cursor_at: tuple[str, ...] | None = None


@dataclass
class Ids:
    user: int
    customer_email: str
    product: int
    sku: str
    category: int
    child_category: int
    order: int
    order_item: int
    review: int
    created_mid: str
    created_late: str


async def fetch_ids(dsn: str) -> Ids:
    """Real ids: a customer with orders of several statuses and reviews, a reviewed product."""
    conn = await asyncpg.connect(dsn)
    try:
        user, email = await conn.fetchrow(
            "SELECT u.id, u.email FROM users u JOIN orders o ON o.user_id = u.id"
            " WHERE u.role = 'customer' AND EXISTS (SELECT 1 FROM reviews r WHERE r.user_id = u.id)"
            " GROUP BY u.id ORDER BY count(DISTINCT o.status) DESC, count(*) DESC, u.id LIMIT 1"
        )
        product, sku = await conn.fetchrow(
            "SELECT p.id, p.sku FROM products p JOIN reviews r ON r.product_id = p.id"
            " WHERE p.active GROUP BY p.id ORDER BY count(*) DESC, p.id LIMIT 1"
        )
        category = await conn.fetchval("SELECT category_id FROM products WHERE id = $1", product)
        child = await conn.fetchval(
            "SELECT id FROM categories WHERE parent_id IS NOT NULL ORDER BY id LIMIT 1"
        )
        order, item = await conn.fetchrow(
            "SELECT o.id, min(i.id) FROM orders o JOIN order_items i ON i.order_id = o.id"
            " WHERE o.user_id = $1 GROUP BY o.id ORDER BY o.id LIMIT 1",
            user,
        )
        review = await conn.fetchval("SELECT min(id) FROM reviews WHERE user_id = $1", user)
        low, high = await conn.fetchrow("SELECT min(created_at), max(created_at) FROM orders")
    finally:
        await conn.close()
    return Ids(
        user=user,
        customer_email=email,
        product=product,
        sku=sku,
        category=category,
        child_category=child,
        order=order,
        order_item=item,
        review=review,
        created_mid=(low + (high - low) / 2).isoformat(),
        created_late=(high - (high - low) / 20).isoformat(),
    )


def requests(ids: Ids, admin: str, customer: str) -> Iterator[Request]:
    gid = to_global_id
    products = (
        "query($sort: ProductSort, $filter: ProductFilter, $after: String) {"
        " products(first: 5, sort: $sort, filter: $filter, after: $after) {"
        f" {PAGE} nodes {{ id name priceCents }} }} }}"
    )
    product_filters: list[tuple[dict[str, Any] | None, str | None]] = [
        (None, None),
        ({"categoryId": gid("Category", ids.category)}, None),
        ({"search": "oak"}, None),
        ({"minPriceCents": 1000, "maxPriceCents": 5000}, None),
        ({"minPriceCents": 20000}, None),
        ({"categoryId": gid("Category", ids.category), "minPriceCents": 1000}, None),
        ({"active": False}, admin),
        ({"active": None}, admin),
        ({"active": None, "categoryId": gid("Category", ids.category)}, admin),
    ]
    for sort in SORTS:
        for filter_, token in product_filters:
            variables = {"sort": sort, "filter": filter_}
            yield Request(f"products {sort} {filter_}", products, variables, token, ("products",))

    yield Request(
        "product by id and sku, its reviews",
        "query($id: ID!, $sku: String!, $after: String) {"
        " a: product(id: $id) { name reviewCount averageRating category { name parent { name } }"
        f" reviews(first: 3, after: $after) {{ {PAGE} nodes {{ rating author {{ name }}"
        " product { name } } } }"
        " b: product(sku: $sku) { id name } }",
        {"id": gid("Product", ids.product), "sku": ids.sku},
        None,
        ("a", "reviews"),
    )
    yield Request(
        "catalog page with review stats and nested reviews",
        "query { products(first: 20) { nodes { reviewCount averageRating category { name }"
        f" reviews(first: 3) {{ {PAGE} nodes {{ rating author {{ name }} }} }} }} }} }}",
        {},
        None,
    )
    yield Request(
        "categories with products",
        "query($after: String) { categories { id name parent { name } children { name }"
        f" products(first: 3, after: $after) {{ {PAGE} nodes {{ name }} }} }} }}",
        {},
        None,
        ("categories",),
    )
    user_orders = (
        "query($id: ID!, $status: OrderStatus, $after: String) { user(id: $id) {"
        " name email role orderCount"
        f" orders(first: 3, status: $status, after: $after) {{ {PAGE}"
        " nodes { id status items { quantity product { name } } } } } }"
    )
    for status in (None, "COMPLETED", "PENDING"):
        yield Request(
            f"user orders status={status} (admin)",
            user_orders,
            {"id": gid("User", ids.user), "status": status},
            admin,
            ("user", "orders"),
        )
    yield Request(
        "user reviews (public)",
        "query($id: ID!, $after: String) { user(id: $id) { name"
        f" reviews(first: 3, after: $after) {{ {PAGE}"
        " nodes { rating product { name } } } } }",
        {"id": gid("User", ids.user)},
        None,
        ("user", "reviews"),
    )
    yield Request(
        "viewer (customer)",
        "query($after: String) { viewer { name email orderCount"
        f" orders(first: 2, after: $after) {{ {PAGE} nodes {{ id }} }}"
        " reviews(first: 2) { totalCount nodes { id } } } }",
        {},
        customer,
        ("viewer", "orders"),
    )
    orders = (
        "query($filter: OrderFilter, $after: String) { orders(first: 5, filter: $filter,"
        f" after: $after) {{ {PAGE} nodes {{ id status customer {{ name }} }} }} }}"
    )
    customer_id = gid("User", ids.user)
    order_filters: list[dict[str, Any] | None] = [
        None,
        {"status": "COMPLETED"},
        {"status": "PENDING"},
        {"customerId": customer_id},
        {"customerId": customer_id, "status": "COMPLETED"},
        {"createdAfter": ids.created_mid},
        {"createdAfter": ids.created_late},
        {"createdBefore": ids.created_mid},
        {"createdAfter": ids.created_mid, "createdBefore": ids.created_late},
        {"status": "PENDING", "createdAfter": ids.created_late},
        {
            "customerId": customer_id,
            "status": "COMPLETED",
            "createdAfter": ids.created_mid,
            "createdBefore": ids.created_late,
        },
    ]
    for filter_ in order_filters:
        yield Request(f"orders (admin) {filter_}", orders, {"filter": filter_}, admin, ("orders",))
    for filter_ in (None, {"status": "COMPLETED"}, {"createdAfter": ids.created_mid}):
        yield Request(
            f"orders (customer) {filter_}", orders, {"filter": filter_}, customer, ("orders",)
        )
    yield Request(
        "order by id with items, product, order, customer",
        "query($id: ID!) { order(id: $id) { status totalCents createdAt customer { name email }"
        " items { id quantity unitPriceCents product { name } order { id } } } }",
        {"id": gid("Order", ids.order)},
        customer,
    )
    ids_of_every_type = [
        gid("User", ids.user),
        gid("Category", ids.child_category),
        gid("Product", ids.product),
        gid("Review", ids.review),
        gid("Order", ids.order),
        gid("OrderItem", ids.order_item),
    ]
    yield Request(
        "nodes of every type (admin)",
        "query($ids: [ID!]!) { nodes(ids: $ids) { id ... on Order { status } } }",
        {"ids": ids_of_every_type},
        admin,
    )
    for id_ in ids_of_every_type:
        yield Request(
            f"node {id_}",
            "query($id: ID!) { node(id: $id) { id ... on Review { author { name } product"
            " { name } } ... on Category { children { name } } } }",
            {"id": id_},
            customer,
        )
    yield Request(
        "users (admin)",
        f"query($after: String) {{ users(first: 5, after: $after) {{ {PAGE}"
        " nodes { name email orderCount } } }",
        {},
        admin,
        ("users",),
    )
    yield Request("order dashboard (admin)", DASHBOARD, {"n": 50}, admin)


def end_cursor(data: Any) -> str | None:
    """The first non-null `endCursor` in `data`, depth first."""
    if isinstance(data, dict):
        if data.get("endCursor"):
            return str(data["endCursor"])
        values: Any = data.values()
    elif isinstance(data, list):
        values = data
    else:
        return None
    for value in values:
        if (cursor := end_cursor(value)) is not None:
            return cursor
    return None


# A count over a large share of a table is cheapest as a sequential scan: no
# index makes `count(*)` over half of `orders` faster (forcing an index-only scan
# measured slower). Such a scan passes, and is reported; any other fails.
BROAD_COUNT_SHARE = 0.25


@dataclass
class PlanSummary:
    node_types: set[str] = field(default_factory=set)
    indexes: set[str] = field(default_factory=set)
    seq_scans: set[str] = field(default_factory=set)
    broad_counts: set[str] = field(default_factory=set)


def walk(
    plan: dict[str, Any],
    summary: PlanSummary,
    table_rows: dict[str, float],
    under_aggregate: bool = False,
) -> None:
    node_type = plan["Node Type"]
    relation = plan.get("Relation Name")
    summary.node_types.add(f"{node_type}({relation})" if relation else node_type)
    if "Index Name" in plan:
        summary.indexes.add(plan["Index Name"])
    if node_type == "Seq Scan" and relation:
        rows = table_rows.get(relation, 0.0)
        share = plan.get("Plan Rows", 0) / rows if rows else 0.0
        if under_aggregate and share >= BROAD_COUNT_SHARE:
            summary.broad_counts.add(f"{relation} ({share:.0%})")
        else:
            summary.seq_scans.add(relation)
    aggregate = under_aggregate or node_type == "Aggregate"
    for child in plan.get("Plans", ()):
        # A parallel scan reports the rows of one worker: scale by the workers.
        child_rows = dict(table_rows)
        if node_type == "Gather":
            workers = plan.get("Workers Planned", 0) + 1
            child_rows = {t: r / workers for t, r in table_rows.items()}
        walk(child, summary, child_rows, aggregate)


def one_line(statement: str) -> str:
    return re.sub(r"\s+", " ", statement).strip()


def abbreviated(statement: str, width: int = 90) -> str:
    """One line, long select lists shown as `…`, cut to `width` characters."""
    text = re.sub(r"SELECT ((?:(?!SELECT|FROM).){40,}?) FROM", "SELECT … FROM", one_line(statement))
    return text if len(text) <= width else text[: width - 1] + "…"


async def explain_all(
    dsn: str, recorded: dict[str, list[tuple[Any, ...]]], *, analyze: bool
) -> bool:
    options = "ANALYZE, BUFFERS, FORMAT JSON" if analyze else "FORMAT JSON"
    conn = await asyncpg.connect(dsn)
    ok = True
    rows: list[tuple[str, str, str, str]] = []
    try:
        table_rows = {
            name: float(count)
            for name, count in await conn.fetch(
                "SELECT relname, reltuples FROM pg_class WHERE relkind = 'r'"
            )
        }
        search_indexed = bool(
            await conn.fetchval("SELECT 1 FROM pg_indexes WHERE indexname = $1", SEARCH_INDEX)
        )
        if not search_indexed:
            print(f"note: {SEARCH_INDEX} is absent (pg_trgm unavailable?): searches scan")
        for statement, parameter_sets in recorded.items():
            summary = PlanSummary()
            slowest = 0.0
            unindexed_search = False
            for parameters in parameter_sets:
                raw = await conn.fetchval(f"EXPLAIN ({options}) {statement}", *parameters)
                plan = json.loads(raw)[0]
                this = PlanSummary()
                walk(plan["Plan"], this, table_rows)
                summary.node_types |= this.node_types
                summary.indexes |= this.indexes
                summary.seq_scans |= this.seq_scans
                summary.broad_counts |= this.broad_counts
                slowest = max(slowest, plan.get("Execution Time", 0.0))
                if search_indexed and " ILIKE " in statement and SEARCH_INDEX not in this.indexes:
                    ok = False
                    unindexed_search = True
                    print(f"\nFAIL: a name search without {SEARCH_INDEX}")
                    print(f"  statement: {one_line(statement)}")
                    print(json.dumps(plan["Plan"], indent=2))
                if this.seq_scans & GUARDED_TABLES:
                    ok = False
                    print(f"\nFAIL: Seq Scan of {sorted(this.seq_scans & GUARDED_TABLES)}")
                    print(f"  statement: {one_line(statement)}")
                    print(f"  parameters: {parameters!r}")
                    print(json.dumps(plan["Plan"], indent=2))
            failed = bool(summary.seq_scans & GUARDED_TABLES) or unindexed_search
            verdict = "FAIL" if failed else "ok"
            if verdict == "ok" and summary.broad_counts:
                verdict = "ok*"
                print(f"\nok*: broad count by sequential scan of {sorted(summary.broad_counts)}")
                print(f"  statement: {one_line(statement)}")
            if analyze:
                verdict += f" {slowest:.2f}ms"
            rows.append(
                (
                    verdict,
                    abbreviated(statement),
                    ", ".join(sorted(summary.node_types)),
                    ", ".join(sorted(summary.indexes)) or "-",
                )
            )
    finally:
        await conn.close()
    width = 12 if analyze else 6
    print(f"\n{'result':<{width}} | {'statement':<90} | node types | indexes")
    for verdict, statement, nodes, indexes in rows:
        print(f"{verdict:<{width}} | {statement:<90} | {nodes} | {indexes}")
    return ok


async def run(database_url: str, analyze: bool) -> int:
    dsn = asyncpg_dsn(database_url)
    ids = await fetch_ids(dsn)
    # Statement text -> its distinct parameter sets, in first-seen order.
    recorded: dict[str, list[tuple[Any, ...]]] = {}
    async with in_process_app(database_url) as api:
        admin = await admin_token(api.app)
        issued = await create_token(
            sessionmaker=api.services.sessionmaker, email=ids.customer_email
        )
        api.recorder.clear()
        count = 0
        for request in requests(ids, admin, issued.token):
            data = await api.post(request.query, request.variables, request.token)
            count += 1
            if request.cursor_at is not None:
                for key in request.cursor_at:
                    data = data[key]
                cursor = end_cursor(data)
                if cursor is None:
                    raise RuntimeError(f"{request.name}: no endCursor to page with")
                variables = {**request.variables, "after": cursor}
                await api.post(request.query, variables, request.token)
                count += 1
        for statement, parameters in api.recorder.statements:
            sets = recorded.setdefault(statement, [])
            params = tuple(parameters)
            if params not in sets:
                sets.append(params)
    total = sum(len(sets) for sets in recorded.values())
    print(f"{count} GraphQL requests; {len(recorded)} distinct statements, {total} parameter sets")
    ok = await explain_all(dsn, recorded, analyze=analyze)
    print(
        "\nPASS: no Seq Scan of orders, order_items or reviews, every name search uses"
        f" {SEARCH_INDEX} where it exists (ok*: a count over a large share of the table,"
        " where a scan is the cheapest plan)"
        if ok
        else "\nFAILED"
    )
    return 0 if ok else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument(
        "--analyze", action="store_true", help="EXPLAIN ANALYZE: also run them, show the slowest"
    )
    args = parser.parse_args()
    sys.exit(asyncio.run(run(args.database_url, args.analyze)))


if __name__ == "__main__":
    main()
