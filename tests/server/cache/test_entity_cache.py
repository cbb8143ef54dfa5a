"""The entity cache behind the by-id loaders: one store read, one statement for the misses."""

from __future__ import annotations

from collections.abc import Sequence

from loaders import Dialect, Loaders
from loaders.records import ProductRecord
from server.cache.entity_cache import StoreEntityCache, decode_record, encode_record
from server.cache.protocol import CacheUnavailable, ResultCache, Snapshot
from server.cache.store_memory import InMemoryCacheStore
from tests.conftest import Database
from tests.factories import Factory


def loaders_of(db: Database, store: ResultCache) -> Loaders:
    dialect: Dialect = "postgresql" if db.backend == "postgresql" else "sqlite"
    cache = StoreEntityCache(store, ttl=60)
    return Loaders(sessionmaker=db.sessionmaker, dialect=dialect, entity_cache=cache)


async def test_every_record_survives_the_codec(db: Database, factory: Factory) -> None:
    user = await factory.user(avatar_url=None)
    review = await factory.review(user_id=user)
    order = await factory.order(user_id=user)
    loaders = Loaders(sessionmaker=db.sessionmaker, dialect=db.backend)  # type: ignore[arg-type]
    product = await loaders.product_by_id.load(await factory.product())
    records = [
        await loaders.user_by_id.load(user),
        await loaders.review_by_id.load(review),
        await loaders.order_by_id.load(order),
        product,
        await loaders.category_by_id.load(product.category_id if product else 0),
    ]

    for record in records:
        assert record is not None
        assert decode_record(type(record), encode_record(record)) == record


def test_a_record_of_another_shape_reads_as_missing() -> None:
    from loaders.records import CategoryRecord

    encoded = encode_record(CategoryRecord(1, "Home", None))

    assert decode_record(ProductRecord, encoded) is None


async def test_a_second_request_reads_no_rows(
    db: Database, factory: Factory, store: ResultCache
) -> None:
    products = [await factory.product() for _ in range(3)]
    db.statements.clear()

    first = await loaders_of(db, store).product_by_id.load_many([*products, 10**9])
    assert len(db.statements) == 1
    later = loaders_of(db, store)
    again = await later.product_by_id.load_many([*products, 10**9])

    assert len(db.statements) == 2  # the missing id is asked for again
    assert again == first
    assert later.tags == {f"Product:{p}" for p in products}


async def test_only_the_misses_are_read(db: Database, factory: Factory, store: ResultCache) -> None:
    products = [await factory.product() for _ in range(4)]
    await loaders_of(db, store).product_by_id.load_many(products[:2])
    db.statements.clear()
    fetched: list[Sequence[int]] = []
    loaders = loaders_of(db, store)
    cache = loaders.entity_cache
    assert isinstance(cache, StoreEntityCache)
    original = cache.load

    async def spy(ids, record, fetch):  # type: ignore[no-untyped-def]
        async def counted(missing: list[int]):  # type: ignore[no-untyped-def]
            fetched.append(list(missing))
            return await fetch(missing)

        return await original(ids, record, counted)

    cache.load = spy  # type: ignore[method-assign]
    values = await loaders.product_by_id.load_many(products)

    assert [v.id for v in values if v is not None] == products
    assert fetched == [products[2:]]
    assert len(db.statements) == 1


async def test_an_invalidated_entity_is_read_again(
    db: Database, factory: Factory, store: ResultCache
) -> None:
    product = await factory.product(name="Lamp")
    await loaders_of(db, store).product_by_id.load(product)
    async with db.sessionmaker.begin() as session:
        from sqlalchemy import update

        from models import Product

        await session.execute(update(Product).where(Product.id == product).values(name="Desk"))

    await store.invalidate([f"Product:{product}"])
    found = await loaders_of(db, store).product_by_id.load(product)

    assert found is not None
    assert found.name == "Desk"


class DownStore(InMemoryCacheStore):
    async def get_entities(self, tags: Sequence[str]) -> tuple[list[bytes | None], Snapshot]:
        raise CacheUnavailable("down")


async def test_an_unreachable_store_reads_the_database(db: Database, factory: Factory) -> None:
    product = await factory.product()
    db.statements.clear()

    for _ in range(2):
        found = await loaders_of(db, DownStore(max_bytes=10_000)).product_by_id.load(product)
        assert found is not None

    assert len(db.statements) == 2
