"""Validation of connection arguments (`first`, `after`) into loader page args."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from loaders.pagination import InvalidCursor, Page, PageArgs, Sort
from resolvers.errors import InvalidInput

T = TypeVar("T")

MAX_PAGE_SIZE = 100


def page_args(*, first: int | None, after: str | None, sort: Sort, default: int) -> PageArgs:
    """`first` must be 0..100; `after` must be a cursor this server issued for `sort`."""
    size = default if first is None else first
    if not 0 <= size <= MAX_PAGE_SIZE:
        raise InvalidInput(
            f"`first` must be between 0 and {MAX_PAGE_SIZE}, got {size}.", field="first"
        )
    if after is None:
        return PageArgs(first=size)
    try:
        return PageArgs(first=size, after=sort.decode(after))
    except InvalidCursor:
        raise InvalidInput("`after` is not a cursor issued by this list.", field="after") from None


@dataclass(frozen=True, slots=True)
class Connection(Generic[T]):
    """A page plus a deferred total: the count runs only if `totalCount` is asked for."""

    page: Page[T]
    count: Callable[[], Awaitable[int]]
