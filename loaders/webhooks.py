"""Webhook reads: by id, the admin listing, and one webhook's deliveries.

A webhook's deliveries are listed per webhook (one statement each): the
listing is an admin screen of a few webhooks, not a hot path.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, func, select

from loaders import keyset
from loaders.batch import BatchFn, SessionMaker, fetch_all
from loaders.entities import rows_by_key
from loaders.pagination import NEWEST, Page, PageArgs
from loaders.records import WebhookDeliveryRecord, WebhookRecord
from loaders.sql import Statement, record_columns
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


def _delivery_conditions(status: bool) -> list[Any]:
    conditions = [_deliveries.c.webhook_id == bindparam("webhook_id")]
    if status:
        conditions.append(_deliveries.c.status == bindparam("status"))
    return conditions


_DELIVERIES_PAGE = {
    (s, a): _page_statement(_deliveries, WebhookDeliveryRecord, _delivery_conditions(s), after=a)
    for s in (False, True)
    for a in (False, True)
}
_DELIVERIES_COUNT = {
    s: select(func.count()).select_from(_deliveries).where(*_delivery_conditions(s))
    for s in (False, True)
}


def _delivery_params(webhook_id: int, status: str | None) -> dict[str, Any]:
    params: dict[str, Any] = {"webhook_id": webhook_id}
    if status is not None:
        params["status"] = status
    return params


async def deliveries_page(
    *, sessionmaker: SessionMaker, webhook_id: int, status: str | None, args: PageArgs
) -> Page[WebhookDeliveryRecord]:
    """One webhook's deliveries (of one status, when given), newest first."""
    statement = _DELIVERIES_PAGE[status is not None, args.after is not None]
    params = _delivery_params(webhook_id, status)
    return await _page(sessionmaker, statement, params, WebhookDeliveryRecord, args)


async def deliveries_count(
    *, sessionmaker: SessionMaker, webhook_id: int, status: str | None
) -> int:
    statement = _DELIVERIES_COUNT[status is not None]
    rows = await fetch_all(sessionmaker, statement, _delivery_params(webhook_id, status))
    return int(rows[0][0])
