"""Reads of users: public profiles, private fields, and the admin listing."""

from __future__ import annotations

from asyncio import Future
from typing import Any

from loaders import Loaders, listings, loaded
from loaders.pagination import NEWEST
from loaders.records import OrderRecord, ReviewRecord, UserRecord
from resolvers.errors import Forbidden
from resolvers.paging import Connection, page_args
from resolvers.viewer import Viewer


def user(*, loaders: Loaders, user_id: int) -> Any:
    """The record, or its future when not loaded yet."""
    return loaded(loaders.user_by_id, user_id)


def private_field(*, viewer: Viewer, user: UserRecord, value: str) -> str | None:
    """Email and role: the user themself or an admin; null (no error) for anyone else."""
    return value if viewer.can_see_private_data_of(user.id) else None


def _require_private_access(viewer: Viewer, user: UserRecord, what: str) -> None:
    # The contract: "anyone else gets null and a FORBIDDEN error", anonymous included.
    if not viewer.can_see_private_data_of(user.id):
        raise Forbidden(f"Only the user themself or an admin may see {what}.")


async def users(
    *, loaders: Loaders, viewer: Viewer, first: int | None, after: str | None
) -> Connection[UserRecord]:
    viewer.require_user()
    if not viewer.is_admin:
        raise Forbidden("Only admins may list users.")
    args = page_args(first=first, after=after, sort=NEWEST, default=20)
    page = await listings.users_page(sessionmaker=loaders.sessionmaker, args=args)
    loaders.tag_listing(UserRecord, page.items)

    async def count() -> int:
        return await listings.users_count(sessionmaker=loaders.sessionmaker)

    return Connection(page, count)


async def orders_of(
    *,
    loaders: Loaders,
    viewer: Viewer,
    user: UserRecord,
    status: str | None,
    first: int | None,
    after: str | None,
) -> Connection[OrderRecord]:
    _require_private_access(viewer, user, "their orders")
    args = page_args(first=first, after=after, sort=NEWEST, default=10)
    page = await loaders.orders_page_by_user_id.load((user.id, status, args))

    def count() -> Future[Any]:
        return loaders.order_count_by_user_id.load((user.id, status))

    return Connection(page, count)


async def order_count_of(*, loaders: Loaders, viewer: Viewer, user: UserRecord) -> int:
    _require_private_access(viewer, user, "their order count")
    count: int = await loaders.order_count_by_user_id.load((user.id, None))
    return count


async def reviews_of(
    *, loaders: Loaders, user: UserRecord, first: int | None, after: str | None
) -> Connection[ReviewRecord]:
    args = page_args(first=first, after=after, sort=NEWEST, default=10)
    page = await loaders.reviews_page_by_user_id.load((user.id, args))

    def count() -> Future[Any]:
        return loaders.review_count_by_user_id.load(user.id)

    return Connection(page, count)
