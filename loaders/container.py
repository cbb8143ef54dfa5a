"""The per-request set of DataLoaders."""

from __future__ import annotations

from asyncio import AbstractEventLoop, Future, get_running_loop
from collections.abc import Iterable
from functools import cached_property, partial
from typing import Any, TypeVar

from aiodataloader import DataLoader

from loaders import aggregates, entities, nested_pages, relations, tags, webhooks
from loaders.batch import BatchFn, SessionMaker
from loaders.cache import EntityCache
from loaders.dataloader import IsolatedDataLoader
from loaders.observer import BatchObserver, reset, run_as
from loaders.pagination import Page, PageArgs
from loaders.records import (
    CategoryRecord,
    OrderItemRecord,
    OrderRecord,
    ProductRecord,
    ReviewRecord,
    ReviewStats,
    UserRecord,
    WebhookDeliveryRecord,
    WebhookRecord,
)
from loaders.sql import Dialect
from loaders.tags import Tagged, TagRule, entity_tag, list_tag

K = TypeVar("K")
V = TypeVar("V")
E = TypeVar("E", bound=Tagged)


def loaded(loader: DataLoader[K, V], key: K) -> V | Future[V]:
    """The loader's value for `key` when already loaded, else the future of it.

    A value ready now lets a resolver answer synchronously, which graphql-core
    completes far cheaper than an awaitable.
    """
    future = loader.load(key)
    return future.result() if future.done() else future


class Loaders:
    """The DataLoaders of one request, each turning a batch of keys into one statement.

    Build one per request inside the running event loop (aiodataloader binds
    the loop when a loader is created): `Loaders(sessionmaker=..., dialect=...)`,
    `dialect` being `engine.dialect.name`. A loader is created on first use, so
    a request pays only for the loaders it touches, and caches its values for
    the request (`prime` / `clear` after a write). Every batch reads on a
    connection of its own from `sessionmaker`'s engine (inside `operation_reads`,
    the one its operation keeps between batches: loaders/batch.py), and hands
    out the records of `loaders.records`, not ORM instances. Root listings, which take arguments
    rather than keys, are plain functions in `loaders.listings`; pass them
    `sessionmaker` and `dialect` from here. With an `entity_cache`, the by-id
    loaders read through it: only the ids it does not hold reach the database.

    Example:
        loaders = Loaders(sessionmaker=sessionmaker, dialect="sqlite")
        product, stats = await asyncio.gather(
            loaders.product_by_id.load(1), loaders.review_stats_by_product_id.load(1)
        )
    """

    def __init__(
        self,
        *,
        sessionmaker: SessionMaker,
        dialect: Dialect,
        entity_cache: EntityCache | None = None,
        observer: BatchObserver | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.dialect: Dialect = dialect
        self.entity_cache = entity_cache
        self.observer = observer
        self.tags: set[str] = set()
        """Cache tags of everything loaded so far (loaders/tags.py)."""
        self._event_loop: AbstractEventLoop | None = None

    def clear(self) -> None:
        """Forgets everything loaded so far (after a write, so later reads see it)."""
        for value in self.__dict__.values():
            if isinstance(value, DataLoader):
                value.clear_all()

    def tag_listing(self, kind: type[Tagged], items: Iterable[Any]) -> None:
        """Records a read made outside the loaders, of the root listing of `kind`:
        `Type:list` and each `Type:id` it returned."""
        self.tags.add(list_tag(kind))
        self.tags.update(entity_tag(kind, item.id) for item in items)

    def _loader(self, batch: BatchFn[K, V], tag_rule: TagRule, *, name: str) -> DataLoader[K, V]:
        bound = partial(batch, sessionmaker=self.sessionmaker, dialect=self.dialect)
        loader = name  # the property's: what metrics and traces call this loader
        observer = self.observer
        # The set, not `self`: the loader is held by `self`, and a closure over `self`
        # would make a cycle that keeps every record of the request for the collector.
        loaded_tags = self.tags

        async def load_and_tag(keys: list[K]) -> list[V]:
            # Set for this batch's statements only: reset below, since a batch may run
            # in its caller's task (the compiled executor's) as well as in its own.
            token = run_as(loader)
            try:
                if observer is None:
                    values = await bound(keys)
                else:
                    with observer.batch(loader, len(keys)):
                        values = await bound(keys)
            finally:
                reset(token)
            loaded_tags.update(tag_rule(keys, values))
            return values

        # aiodataloader would look the loop up for every loader (`get_event_loop`: a
        # getpid syscall each, 2% of the product page's samples); once per request here.
        loop = self._event_loop
        if loop is None:
            loop = self._event_loop = get_running_loop()
        return IsolatedDataLoader(load_and_tag, loop=loop)

    def _by_id(
        self, batch: BatchFn[int, E | None], record: type[E], *, name: str
    ) -> DataLoader[int, E | None]:
        """A by-id loader, through the entity cache when there is one; tagged `Type:id`."""
        cache = self.entity_cache
        if cache is None:
            return self._loader(batch, tags.entities(record), name=name)

        async def through_cache(
            keys: list[int], /, *, sessionmaker: SessionMaker, dialect: Dialect
        ) -> list[E | None]:
            async def fetch(ids: list[int]) -> list[E | None]:
                return await batch(ids, sessionmaker=sessionmaker, dialect=dialect)

            return await cache.load(keys, record, fetch)

        return self._loader(through_cache, tags.entities(record), name=name)

    # By id: None for a missing key.

    @cached_property
    def user_by_id(self) -> DataLoader[int, UserRecord | None]:
        return self._by_id(entities.user_by_id, UserRecord, name="user_by_id")

    @cached_property
    def category_by_id(self) -> DataLoader[int, CategoryRecord | None]:
        return self._by_id(entities.category_by_id, CategoryRecord, name="category_by_id")

    @cached_property
    def product_by_id(self) -> DataLoader[int, ProductRecord | None]:
        return self._by_id(entities.product_by_id, ProductRecord, name="product_by_id")

    @cached_property
    def product_by_sku(self) -> DataLoader[str, ProductRecord | None]:
        return self._loader(
            entities.product_by_sku,
            tags.both(tags.entities(ProductRecord), tags.on_miss(list_tag(ProductRecord))),
            name="product_by_sku",
        )

    @cached_property
    def order_by_id(self) -> DataLoader[int, OrderRecord | None]:
        return self._by_id(entities.order_by_id, OrderRecord, name="order_by_id")

    @cached_property
    def review_by_id(self) -> DataLoader[int, ReviewRecord | None]:
        return self._by_id(entities.review_by_id, ReviewRecord, name="review_by_id")

    # Webhooks skip the entity cache: the worker changes deliveries without
    # announcing it, so only the database is current.
    @cached_property
    def webhook_by_id(self) -> DataLoader[int, WebhookRecord | None]:
        return self._loader(
            webhooks.webhook_by_id, tags.entities(WebhookRecord), name="webhook_by_id"
        )

    @cached_property
    def webhook_delivery_by_id(self) -> DataLoader[int, WebhookDeliveryRecord | None]:
        return self._loader(
            webhooks.webhook_delivery_by_id,
            tags.entities(WebhookDeliveryRecord),
            name="webhook_delivery_by_id",
        )

    @cached_property
    def deliveries_page_by_webhook_id(
        self,
    ) -> DataLoader[tuple[int, str | None, PageArgs], Page[WebhookDeliveryRecord]]:
        """Keys are (webhook id, status or `None` for every status, page arguments)."""
        return self._loader(
            webhooks.deliveries_page_by_webhook_id,
            tags.entities(WebhookDeliveryRecord),
            name="deliveries_page_by_webhook_id",
        )

    @cached_property
    def delivery_count_by_webhook_id(self) -> DataLoader[tuple[int, str | None], int]:
        return self._loader(
            webhooks.delivery_count_by_webhook_id,
            tags.keyed(list_tag(WebhookDeliveryRecord, "webhook_id", "{}"), part=0),
            name="delivery_count_by_webhook_id",
        )

    # One-to-many: an empty list for none.

    @cached_property
    def items_by_order_id(self) -> DataLoader[int, list[OrderItemRecord]]:
        """An order's items in insertion order (id ascending)."""
        return self._loader(
            relations.items_by_order_id,
            tags.keyed(entity_tag(OrderRecord, "{}")),
            name="items_by_order_id",
        )

    @cached_property
    def children_by_category_id(self) -> DataLoader[int, list[CategoryRecord]]:
        """A category's subcategories by name, then id."""
        return self._loader(
            relations.children_by_category_id,
            tags.both(
                tags.entities(CategoryRecord),
                tags.keyed(list_tag(CategoryRecord, "parent_id", "{}")),
            ),
            name="children_by_category_id",
        )

    # Aggregates: zero (or no average) for none.

    @cached_property
    def review_stats_by_product_id(self) -> DataLoader[int, ReviewStats]:
        """Count and mean rating of a product's reviews: `ReviewStats(0, None)` for none."""
        return self._loader(
            aggregates.review_stats_by_product_id,
            tags.keyed(entity_tag(ProductRecord, "{}")),
            name="review_stats_by_product_id",
        )

    @cached_property
    def review_count_by_user_id(self) -> DataLoader[int, int]:
        return self._loader(
            aggregates.review_count_by_user_id,
            tags.keyed(list_tag(ReviewRecord, "user_id", "{}")),
            name="review_count_by_user_id",
        )

    @cached_property
    def order_count_by_user_id(self) -> DataLoader[tuple[int, str | None], int]:
        """Keys are (user id, status), status `None` counting orders of every status."""
        return self._loader(
            aggregates.order_count_by_user_id,
            tags.both(
                tags.keyed(entity_tag(UserRecord, "{}"), part=0),
                tags.keyed(list_tag(OrderRecord, "user_id", "{}"), part=0),
            ),
            name="order_count_by_user_id",
        )

    @cached_property
    def active_product_count_by_category_id(self) -> DataLoader[int, int]:
        return self._loader(
            aggregates.active_product_count_by_category_id,
            tags.keyed(list_tag(ProductRecord, "category_id", "{}")),
            name="active_product_count_by_category_id",
        )

    # Nested pages, newest first (created_at, then id, descending): keys carry the page
    # arguments, and keys with equal arguments share one statement.

    @cached_property
    def reviews_page_by_product_id(self) -> DataLoader[tuple[int, PageArgs], Page[ReviewRecord]]:
        return self._loader(
            nested_pages.reviews_page_by_product_id,
            tags.both(
                tags.entities(ReviewRecord),
                tags.keyed(list_tag(ReviewRecord, "product_id", "{}"), part=0),
            ),
            name="reviews_page_by_product_id",
        )

    @cached_property
    def reviews_page_by_user_id(self) -> DataLoader[tuple[int, PageArgs], Page[ReviewRecord]]:
        return self._loader(
            nested_pages.reviews_page_by_user_id,
            tags.both(
                tags.entities(ReviewRecord),
                tags.keyed(list_tag(ReviewRecord, "user_id", "{}"), part=0),
            ),
            name="reviews_page_by_user_id",
        )

    @cached_property
    def orders_page_by_user_id(
        self,
    ) -> DataLoader[tuple[int, str | None, PageArgs], Page[OrderRecord]]:
        """Keys are (user id, status or `None` for every status, page arguments)."""
        return self._loader(
            nested_pages.orders_page_by_user_id,
            tags.both(
                tags.entities(OrderRecord),
                tags.keyed(list_tag(OrderRecord, "user_id", "{}"), part=0),
            ),
            name="orders_page_by_user_id",
        )

    @cached_property
    def products_page_by_category_id(
        self,
    ) -> DataLoader[tuple[int, PageArgs], Page[ProductRecord]]:
        """A category's active products."""
        return self._loader(
            nested_pages.products_page_by_category_id,
            tags.both(
                tags.entities(ProductRecord),
                tags.keyed(list_tag(ProductRecord, "category_id", "{}"), part=0),
            ),
            name="products_page_by_category_id",
        )
