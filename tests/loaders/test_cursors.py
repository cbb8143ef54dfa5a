"""Cursors (loaders/pagination.py): what `encode` writes, `decode` reads back, under
every sort and for any text; cursors written by earlier versions still read."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from loaders import BY_NAME, NEWEST, PRICE_ASC, Sort
from loaders.pagination import MAX_CURSOR_LENGTH, InvalidCursor

NAMES = [
    "plain",
    "Lampe für Äpfel",
    "灯 🪔 \U0001f600",
    'quote " back\\slash',
    "a" * 200,
    "😀" * 200,
]


@pytest.mark.parametrize("name", NAMES)
def test_a_cursor_reads_back_its_position_whatever_the_text(name: str) -> None:
    record = SimpleNamespace(name=name, id=42)
    cursor = BY_NAME.encode(record)

    assert BY_NAME.decode(cursor) == (name, 42)
    assert len(cursor) <= MAX_CURSOR_LENGTH
    assert "=" not in cursor
    assert cursor == base64.urlsafe_b64encode(cursor_bytes(cursor)).decode().rstrip("=")


@pytest.mark.parametrize(
    ("sort", "value"),
    [(NEWEST, datetime(2026, 12, 1, 8, 30, 0, 123456, tzinfo=UTC)), (PRICE_ASC, 1999)],
)
def test_each_sort_reads_back_its_own_values(sort: Sort, value: object) -> None:
    record = SimpleNamespace(created_at=value, price_cents=value, id=7)

    assert sort.decode(sort.encode(record)) == (value, 7)


@pytest.mark.parametrize("name", NAMES)
def test_a_cursor_written_by_an_earlier_version_still_reads(name: str) -> None:
    # Before orjson: the stdlib's json, every non-ASCII character escaped.
    raw = json.dumps([BY_NAME.name, name, 42], separators=(",", ":"))
    old = base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    assert BY_NAME.decode(old) == (name, 42)


def test_a_cursor_of_another_sort_is_refused() -> None:
    cursor = BY_NAME.encode(SimpleNamespace(name="x", id=1))

    with pytest.raises(InvalidCursor):
        PRICE_ASC.decode(cursor)


def cursor_bytes(cursor: str) -> bytes:
    return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
