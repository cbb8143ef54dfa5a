"""Per-request DataLoaders and root listings: N keys in, one SQL statement out.

- container: `Loaders`, the DataLoaders of one request
- entities, relations, aggregates, nested_pages: their batch functions
- listings: root lists with filters, sorts and counts; the viewer by token
- records, pagination: the values handed out (records, pages, cursors)
- sql, keyset, batch: shared SQL pieces; every dialect difference lives in sql
"""

from loaders.batch import BatchFn, SessionMaker
from loaders.container import Loaders, loaded
from loaders.listings import (
    OrderQuery,
    ProductQuery,
    all_categories,
    orders_count,
    orders_page,
    products_count,
    products_page,
    users_count,
    users_page,
    viewer_by_token_hash,
)
from loaders.pagination import (
    BY_NAME,
    NEWEST,
    PRICE_ASC,
    PRICE_DESC,
    InvalidCursor,
    Page,
    PageArgs,
    Position,
    Sort,
)
from loaders.records import (
    CategoryRecord,
    OrderItemRecord,
    OrderRecord,
    ProductRecord,
    ReviewRecord,
    ReviewStats,
    UserRecord,
)
from loaders.sql import Dialect

__all__ = [
    "BY_NAME",
    "NEWEST",
    "PRICE_ASC",
    "PRICE_DESC",
    "BatchFn",
    "CategoryRecord",
    "Dialect",
    "InvalidCursor",
    "Loaders",
    "OrderItemRecord",
    "OrderQuery",
    "OrderRecord",
    "Page",
    "PageArgs",
    "Position",
    "ProductQuery",
    "ProductRecord",
    "ReviewRecord",
    "ReviewStats",
    "SessionMaker",
    "Sort",
    "UserRecord",
    "all_categories",
    "loaded",
    "orders_count",
    "orders_page",
    "products_count",
    "products_page",
    "users_count",
    "users_page",
    "viewer_by_token_hash",
]
