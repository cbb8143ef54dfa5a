"""Keyset pagination in SQL: the order of a `Sort` and the condition of its `after`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, FromClause, UnaryExpression, bindparam, tuple_

from loaders.pagination import PageArgs, Sort


def order_by(table: FromClause, sort: Sort) -> tuple[UnaryExpression[Any], UnaryExpression[Any]]:
    """`sort.column` then `id`, both in the sort's direction."""
    column, id_ = table.c[sort.column], table.c.id
    if sort.descending:
        return column.desc(), id_.desc()
    return column.asc(), id_.asc()


def after(table: FromClause, sort: Sort) -> ColumnElement[bool]:
    """Rows strictly past the position bound as `after_value`, `after_id` (see `after_params`).

    One row-value comparison, which both backends answer from an index on
    (column, id) in either direction.
    """
    column, id_ = table.c[sort.column], table.c.id
    position = tuple_(
        bindparam("after_value", type_=column.type), bindparam("after_id", type_=id_.type)
    )
    if sort.descending:
        return tuple_(column, id_) < position
    return tuple_(column, id_) > position


def after_params(args: PageArgs) -> dict[str, Any]:
    """The bind parameters of `after` for `args` (none without a cursor)."""
    if args.after is None:
        return {}
    value, id_ = args.after
    return {"after_value": value, "after_id": id_}
