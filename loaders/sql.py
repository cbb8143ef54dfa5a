"""SQL building blocks shared by the loaders, and the only place where dialects differ.

Every value travels as a named bind parameter and statements are built once
per dialect, so SQLAlchemy's compiled cache and asyncpg's prepared statements
see one SQL text per statement shape.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import fields
from typing import Any, Literal

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    FromClause,
    Select,
    UnaryExpression,
    any_,
    bindparam,
    func,
    literal_column,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.types import TypeEngine

Dialect = Literal["postgresql", "sqlite"]
"""The backends the loaders speak, named as `engine.dialect.name` names them."""

Statement = Select[*tuple[Any, ...]]

LIKE_ESCAPE = "\\"


def in_keys(
    column: ColumnElement[Any],
    *,
    dialect: Dialect,
    name: str = "keys",
    item_type: type[TypeEngine[Any]] = BigInteger,
) -> ColumnElement[bool]:
    """`column` is in the list bound as `name`, with one SQL text for any list length.

    PostgreSQL gets `= ANY(:name)` over one array parameter: an expanding `IN`
    renders (and makes asyncpg prepare) a new statement per list length.
    SQLite has no arrays, so it gets the expanding `IN`.
    """
    if dialect == "postgresql":
        return column == any_(bindparam(name, type_=ARRAY(item_type)))
    return column.in_(bindparam(name, expanding=True))


def first_rows_per_key(
    table: FromClause,
    columns: Sequence[str],
    key: str,
    *,
    dialect: Dialect,
    where: Sequence[ColumnElement[bool]],
    order_by: Callable[[FromClause], Sequence[UnaryExpression[Any]]],
) -> Statement:
    """Top-N per group: the first `:limit` rows in `order_by` order for each value of
    column `key` in the list bound as `keys`, among the rows matching `where`.

    Selects `columns`; rows come grouped by `key`, in `order_by` order within a key.

    PostgreSQL joins each key to a LATERAL subquery with a LIMIT: one index scan
    per key that stops after `:limit` rows, however many rows the key has.
    SQLite has no LATERAL, so it numbers the rows of every key with
    `ROW_NUMBER() OVER (PARTITION BY key ...)` and keeps the first `:limit`.
    """
    limit = bindparam("limit", type_=BigInteger)
    if dialect == "postgresql":
        keys = (
            func.unnest(bindparam("keys", type_=ARRAY(BigInteger)))
            .table_valued("value")
            .render_derived(name="keys")
        )
        page = (
            select(*(table.c[name] for name in columns))
            .where(table.c[key] == keys.c.value, *where)
            .order_by(*order_by(table))
            .limit(limit)
            .lateral("page")
        )
        return (
            select(*(page.c[name] for name in columns))
            .select_from(keys)
            .join(page, true())
            .order_by(page.c[key], *order_by(page))
        )
    row_number = func.row_number().over(partition_by=table.c[key], order_by=order_by(table))
    ranked = (
        select(*(table.c[name] for name in columns), row_number.label("row_number"))
        .where(in_keys(table.c[key], dialect=dialect), *where)
        .subquery("ranked")
    )
    return (
        select(*(ranked.c[name] for name in columns))
        .where(ranked.c.row_number <= limit)
        .order_by(ranked.c[key], ranked.c.row_number)
    )


def is_true(table: FromClause, column: str, *, dialect: Dialect) -> ColumnElement[bool]:
    """The boolean `column` of `table` is true, written as the bare column.

    SQLAlchemy writes `active = 1` on SQLite, and SQLite's planner only uses a
    partial index (`WHERE active`) for a query that repeats its exact term.
    """
    if dialect == "sqlite":
        return literal_column(f"{table.name}.{column}")  # type: ignore[attr-defined]
    return table.c[column]


def contains_ci(column: ColumnElement[str], *, dialect: Dialect, name: str) -> ColumnElement[bool]:
    """`column` matches the LIKE pattern bound as `name` ignoring case (see `like_pattern`)."""
    if dialect == "postgresql":
        return column.ilike(bindparam(name), escape=LIKE_ESCAPE)
    # SQLite folds ASCII only: lowering both sides in SQL keeps them folded alike.
    return func.lower(column).like(func.lower(bindparam(name)), escape=LIKE_ESCAPE)


def like_pattern(text: str) -> str:
    """A LIKE pattern matching `text` anywhere, its `%`, `_` and `\\` taken literally."""
    escaped = (
        text.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2)
        .replace("%", LIKE_ESCAPE + "%")
        .replace("_", LIKE_ESCAPE + "_")
    )
    return f"%{escaped}%"


def field_names(record: type) -> list[str]:
    """The field names of the record dataclass `record`, in order."""
    return [f.name for f in fields(record)]


def record_columns(table: FromClause, record: type) -> list[ColumnElement[Any]]:
    """The columns of `table` in the field order of `record`, so `record(*row)` builds one."""
    return [table.c[name] for name in field_names(record)]


def field_index(record: type, name: str) -> int:
    """The position of field `name` in `record`, hence in a row of `record_columns`."""
    return field_names(record).index(name)
