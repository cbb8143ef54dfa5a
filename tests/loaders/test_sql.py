from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from loaders.sql import contains_ci, in_keys, is_true, like_pattern
from models import Product

products = Product.__table__


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("shoe", "%shoe%"),
        ("100%", "%100\\%%"),
        ("a_b", "%a\\_b%"),
        ("c:\\temp", "%c:\\\\temp%"),
        ("", "%%"),
    ],
)
def test_like_pattern_escapes_wildcards(text: str, pattern: str) -> None:
    assert like_pattern(text) == pattern


def test_in_keys_is_one_array_parameter_on_postgresql() -> None:
    statement = select(products.c.id).where(in_keys(products.c.id, dialect="postgresql"))

    sql = str(statement.compile(dialect=postgresql.dialect()))

    assert "= ANY (%(keys)s::BIGINT[])" in sql


def test_in_keys_expands_on_sqlite() -> None:
    statement = select(products.c.id).where(in_keys(products.c.id, dialect="sqlite"))

    sql = str(statement.compile(dialect=sqlite.dialect()))

    assert "IN (__[POSTCOMPILE_keys])" in sql


def test_is_true_is_the_bare_column_on_both_backends() -> None:
    for dialect, compiler in (("sqlite", sqlite.dialect()), ("postgresql", postgresql.dialect())):
        statement = select(products.c.id).where(is_true(products, "active", dialect=dialect))
        assert str(statement.compile(dialect=compiler)).endswith("WHERE products.active")


def test_contains_ci_per_dialect() -> None:
    pg = select(products.c.id).where(
        contains_ci(products.c.name, dialect="postgresql", name="search")
    )
    lite = select(products.c.id).where(
        contains_ci(products.c.name, dialect="sqlite", name="search")
    )

    assert "ILIKE" in str(pg.compile(dialect=postgresql.dialect()))
    assert "lower(products.name) LIKE lower(?)" in str(lite.compile(dialect=sqlite.dialect()))
