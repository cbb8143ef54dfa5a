"""Trigram index for product name search on PostgreSQL.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01

`products(filter: { search })` is `name ILIKE '%…%'`, which no B-tree serves.
A GIN index over `gin_trgm_ops` does, for patterns of three characters or more.

- SQLite: nothing (no trigram indexes; the search stays a scan of the table).
- PostgreSQL: `CREATE EXTENSION IF NOT EXISTS pg_trgm` (a trusted extension
  since PostgreSQL 13: the database owner, or any role with CREATE on the
  database, may create it), then the index. Where the extension is not
  installed on the server or the role may not create it, the index is skipped
  with a warning and the migration succeeds: search works, only slower. To add
  it later, create the extension as a superuser, then `storefront downgrade
  --revision 0001` (drops nothing but this index) and `storefront migrate`.
- Offline (`alembic upgrade --sql`): both statements are emitted.

The downgrade drops the index and leaves the extension, which other schemas
may use.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from alembic import op
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_products_name_trgm"

logger = logging.getLogger("alembic.runtime.migration")


def upgrade() -> None:
    context = op.get_context()
    if context.dialect.name != "postgresql":
        return
    if context.as_sql:
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    elif not _trigram_extension():
        return
    op.create_index(
        INDEX,
        "products",
        ["name"],
        postgresql_using="gin",
        postgresql_ops={"name": "gin_trgm_ops"},
    )


def downgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    op.drop_index(INDEX, table_name="products", if_exists=True)


def _trigram_extension() -> bool:
    """Whether pg_trgm is (now) installed in this database; creates it if allowed."""
    bind = op.get_bind()
    if bind.execute(text("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")).scalar():
        return True
    available = bind.execute(
        text("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")
    ).scalar()
    if not available:
        logger.warning(
            "pg_trgm is not available on this PostgreSQL server: %s skipped "
            "(product search works without it, by a scan)",
            INDEX,
        )
        return False
    try:
        # A savepoint: a refused statement must not abort the migration's transaction.
        with bind.begin_nested():
            bind.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    except DBAPIError as error:
        logger.warning(
            "could not create the pg_trgm extension (%s): %s skipped "
            "(product search works without it, by a scan)",
            str(error.orig).strip(),
            INDEX,
        )
        return False
    return True
