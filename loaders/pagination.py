"""Keyset pagination: sort orders, opaque cursors and pages.

A cursor is the keyset position of an item (its sort value and id) under one
named sort, base64url-encoded JSON. It is stable under inserts, unlike an
offset, and a cursor minted for one sort is refused by another.

A cursor comes from the client, so decoding is bounded: at most
`MAX_CURSOR_LENGTH` characters, parsed by orjson (which refuses nesting past
its fixed limit with a ValueError instead of recursing), and anything but a
flat `[sort, value, id]` is refused.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

import orjson

T = TypeVar("T")

MAX_CURSOR_LENGTH = 4096
"""Characters; the longest cursor issued (a 200-character name of 4-byte UTF-8
characters) is about 1,100. Cursors of older versions (`json.dumps`, every non-ASCII
character escaped: under 3,300) still decode."""

Position = tuple[Any, int]
"""A keyset position: (sort column value, id)."""


class InvalidCursor(ValueError):
    """A cursor this server did not issue, or issued for another sort."""


@dataclass(frozen=True, slots=True)
class Sort:
    """An order over one column with `id` as the tiebreak, both in one direction."""

    name: str
    column: str
    descending: bool
    value_type: Literal["datetime", "int", "str"]

    def position(self, record: Any) -> Position:
        return (getattr(record, self.column), record.id)

    def encode(self, record: Any) -> str:
        value, id_ = self.position(record)
        if isinstance(value, datetime):
            value = value.isoformat()
        raw = orjson.dumps([self.name, value, id_])
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def decode(self, cursor: str) -> Position:
        if len(cursor) > MAX_CURSOR_LENGTH:
            raise InvalidCursor("cursor is too long")
        try:
            padded = cursor + "=" * (-len(cursor) % 4)
            decoded = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
        except (ValueError, TypeError, binascii.Error, UnicodeError):
            raise InvalidCursor("cursor is not valid") from None
        if not isinstance(decoded, list) or len(decoded) != 3:
            raise InvalidCursor("cursor is not valid")
        name, value, id_ = decoded
        if name != self.name or type(id_) is not int:
            raise InvalidCursor("cursor is not valid for this list and sort")
        try:
            return (self._parse_value(value), id_)
        except (ValueError, TypeError):
            raise InvalidCursor("cursor is not valid") from None

    def _parse_value(self, value: Any) -> Any:
        if self.value_type == "datetime":
            if not isinstance(value, str):
                raise TypeError(value)
            parsed = datetime.fromisoformat(value)
            if parsed.tzinfo is None:
                raise ValueError(value)
            return parsed
        if self.value_type == "int":
            if type(value) is not int:
                raise TypeError(value)
            return value
        if not isinstance(value, str):
            raise TypeError(value)
        return value


NEWEST = Sort("newest", "created_at", descending=True, value_type="datetime")
PRICE_ASC = Sort("price_asc", "price_cents", descending=False, value_type="int")
PRICE_DESC = Sort("price_desc", "price_cents", descending=True, value_type="int")
BY_NAME = Sort("name", "name", descending=False, value_type="str")


@dataclass(frozen=True, slots=True)
class PageArgs:
    """How much of a list to load: `first` items after `after` (a decoded cursor)."""

    first: int
    after: Position | None = None


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a keyset-paginated list."""

    items: list[T]
    has_next_page: bool
    has_previous_page: bool
    sort: Sort

    def cursor(self, item: T) -> str:
        return self.sort.encode(item)
