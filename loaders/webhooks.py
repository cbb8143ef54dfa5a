"""Webhook reads: by id, the admin listing, and the deliveries of many webhooks.

Deliveries are read as every other nested list is: a page per webhook for all
the webhooks of a level in one statement (nested_pages.PagesByParent), and their
counts in one GROUP BY over (webhook, status).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import bindparam, func, select

from loaders import keyset
from loaders.batch import BatchFn, SessionMaker, fetch_all, unique
from loaders.entities import rows_by_key
from loaders.nested_pages import PagesByParent
from loaders.pagination import NEWEST, Page, PageArgs
from loaders.records import WebhookDeliveryRecord, WebhookRecord
from loaders.sql import Dialect, Statement, in_keys, record_columns
from models import Webhook, WebhookDelivery

_webhooks = Webhook.__table__
_deliveries = WebhookDelivery.__table__

webhook_by_id: BatchFn[int, WebhookRecord | None] = rows_by_key(_webhooks, WebhookRecord, "id")
webhook_delivery_by_id: BatchFn[int, WebhookDeliveryRecord | None] = rows_by_key(
    _deliveries, WebhookDeliveryRecord, "id"
)


def _page_statement(table: Any, record: type, conditions: list[Any], *, after: bool) -> Statement:
    if after:
        conditions = [*conditions, keyset.after(table, NEWEST)]
    return (
        select(*record_columns(table, record))
        .where(*conditions)
        .order_by(*keyset.order_by(table, NEWEST))
        .limit(bindparam("limit"))
    )


async def _page(
    sessionmaker: SessionMaker,
    statement: Statement,
    params: dict[str, Any],
    record: Any,
    args: PageArgs,
) -> Page[Any]:
    params = {**params, **keyset.after_params(args), "limit": args.first + 1}
    rows = await fetch_all(sessionmaker, statement, params)
    return Page(
        items=[record(*row) for row in rows[: args.first]],
        has_next_page=len(rows) > args.first,
        has_previous_page=args.after is not None,
        sort=NEWEST,
    )  # fmt: skip


_WEBHOOKS_PAGE = {a: _page_statement(_webhooks, WebhookRecord, [], after=a) for a in (False, True)}
_WEBHOOKS_COUNT = select(func.count()).select_from(_webhooks)


async def webhooks_page(*, sessionmaker: SessionMaker, args: PageArgs) -> Page[WebhookRecord]:
    """All webhooks, newest first."""
    return await _page(
        sessionmaker, _WEBHOOKS_PAGE[args.after is not None], {}, WebhookRecord, args
    )


async def webhooks_count(*, sessionmaker: SessionMaker) -> int:
    rows = await fetch_all(sessionmaker, _WEBHOOKS_COUNT, {})
    return int(rows[0][0])


_deliveries_by_webhook = PagesByParent(
    _deliveries, WebhookDeliveryRecord, parent="webhook_id", sort=NEWEST
)


async def deliveries_page_by_webhook_id(
    keys: list[tuple[int, str | None, PageArgs]],
    /,
    *,
    sessionmaker: SessionMaker,
    dialect: Dialect,
) -> list[Page[WebhookDeliveryRecord]]:
    """Each webhook's deliveries of one status (or any, for `None`), newest first."""
    return await _deliveries_by_webhook.load(
        [
            (webhook_id, () if status is None else (("status", status),), args)
            for webhook_id, status, args in keys
        ],
        sessionmaker=sessionmaker,
        dialect=dialect,
    )


@cache
def _delivery_count_statement(dialect: Dialect) -> Statement:
    webhook_id, status = _deliveries.c.webhook_id, _deliveries.c.status
    return (
        select(webhook_id, status, func.count())
        .where(in_keys(webhook_id, dialect=dialect))
        .group_by(webhook_id, status)
    )


async def delivery_count_by_webhook_id(
    keys: list[tuple[int, str | None]], /, *, sessionmaker: SessionMaker, dialect: Dialect
) -> list[int]:
    """The number of each webhook's deliveries of one status, or of any for `None`:
    one statement for every key, counted per (webhook, status) and summed here."""
    webhook_ids = unique(webhook_id for webhook_id, _ in keys)
    rows = await fetch_all(sessionmaker, _delivery_count_statement(dialect), {"keys": webhook_ids})
    counts: dict[tuple[int, str | None], int] = {}
    for webhook_id, status, count in rows:
        counts[(webhook_id, status)] = count
        counts[(webhook_id, None)] = counts.get((webhook_id, None), 0) + count
    return [counts.get(key, 0) for key in keys]
