"""The response cache through HTTP: headers, 304s, privacy, one run for many misses,
expiry and stale answers, in process and in Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import update

from models import Product
from schema.global_id import to_global_id
from server.database import create_engine, create_sessionmaker
from server.settings import Settings
from tests.cache_support import CACHE_BACKENDS, cached_app
from tests.conftest import Api, Database
from tests.factories import Factory

CATEGORIES = "{ categories { name products { nodes { name } } } }"
PRODUCT = "query($id: ID!) { product(id: $id) { name } }"


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=CACHE_BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.param
    return backend


@pytest_asyncio.fixture
async def api(db: Database, backend: str) -> AsyncIterator[Api]:
    async with cached_app(db, backend) as api:
        yield api


def clock_of(api: Api) -> Clock:
    """Puts the response cache of `api` on a clock the test moves."""
    responses = api.services.caches.responses
    clock = Clock(float(int(responses.clock())))
    responses.clock = clock
    return clock


async def rename(db: Database, product_id: int, name: str) -> None:
    """A change behind the API's back: nothing announces it."""
    async with db.sessionmaker.begin() as session:
        await session.execute(update(Product).where(Product.id == product_id).values(name=name))


async def test_a_hit_is_the_stored_answer_with_its_headers(api: Api, factory: Factory) -> None:
    await factory.product(category_id=await factory.category(name="Home"), name="Lamp")

    first = await api.post(CATEGORIES)
    api.statements.clear()
    again = await api.post(CATEGORIES)

    assert first.headers["x-cache"] == "MISS"
    assert first.headers["cache-control"] == "public, max-age=300"
    assert "age" not in first.headers
    assert again.headers["x-cache"] == "HIT"
    assert again.headers["age"] == "0"
    assert again.headers["etag"] == first.headers["etag"]
    assert again.json()["data"] == first.json()["data"]
    assert again.json()["extensions"]["cost"]["requestedQueryCost"] > 0
    assert api.statements == []


async def test_a_matching_etag_gets_304(api: Api, factory: Factory) -> None:
    await factory.category()
    etag = (await api.post(CATEGORIES)).headers["etag"]

    response = await api.post(CATEGORIES, headers={"If-None-Match": etag})

    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == etag
    other = await api.post(CATEGORIES, headers={"If-None-Match": '"other"'})
    assert other.status_code == 200


async def test_get_requests_are_cached_too(api: Api, factory: Factory) -> None:
    await factory.category()

    first = await api.client.get("/graphql", params={"query": CATEGORIES})
    again = await api.client.get("/graphql", params={"query": CATEGORIES})

    assert (first.headers["x-cache"], again.headers["x-cache"]) == ("MISS", "HIT")
    assert again.headers["cache-control"].startswith("public, max-age=")


async def test_mutations_and_answers_with_errors_are_not_stored(api: Api, factory: Factory) -> None:
    owner = await api.token("owner@example.com")
    stranger = await api.token("stranger@example.com")
    product = await factory.product()
    review = (
        'mutation($id: ID!) { addReview(input: {productId: $id, rating: 5, body: "ok"}) { id } }'
    )

    mutation = await api.post(review, {"id": to_global_id("Product", product)}, token=owner)
    assert mutation.headers["x-cache"] == "BYPASS"
    assert mutation.headers["cache-control"] == "no-store"

    order = await factory.order(user_id=await factory.user())
    query = "query($id: ID!) { order(id: $id) { status } }"
    for _ in range(2):
        refused = await api.post(query, {"id": to_global_id("Order", order)}, token=stranger)
        assert refused.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        assert refused.headers["cache-control"] == "no-store"
        assert refused.headers["x-cache"] != "HIT"


async def test_private_answers_are_never_served_to_another_viewer_or_anonymously(
    api: Api, factory: Factory
) -> None:
    alice = await api.token("alice@example.com")
    bob = await api.token("bob@example.com")
    await api.post(
        "mutation($id: ID!) { placeOrder(input: {lines: [{productId: $id, quantity: 1}]}) { id } }",
        {"id": to_global_id("Product", await factory.product())},
        token=alice,
    )
    mine = "{ viewer { email orderCount orders { nodes { id } } } }"

    warm = await api.post(mine, token=alice)
    assert (await api.post(mine, token=alice)).headers["x-cache"] == "HIT"
    assert warm.headers["cache-control"] == "private, max-age=60"
    assert warm.headers["vary"] == "Authorization, Accept, Accept-Encoding"

    as_bob = await api.post(mine, token=bob)
    assert as_bob.headers["x-cache"] == "MISS"
    assert as_bob.json()["data"]["viewer"] == {
        "email": "bob@example.com",
        "orderCount": 0,
        "orders": {"nodes": []},
    }
    anonymous = await api.post(mine)
    assert anonymous.json()["data"] == {"viewer": None}
    assert anonymous.headers["cache-control"] == "no-store"
    assert (await api.post(mine)).headers["x-cache"] == "BYPASS"


async def test_another_users_private_fields_stay_private_with_the_cache_warm(
    api: Api,
) -> None:
    alice = await api.token("alice@example.com")
    bob = await api.token("bob@example.com")
    alice_id = (await api.data("{ viewer { id } }", token=alice))["viewer"]["id"]
    profile = "query($id: ID!) { user(id: $id) { name email orderCount } }"

    await api.post(profile, {"id": alice_id}, token=alice)
    assert (await api.post(profile, {"id": alice_id}, token=alice)).headers["x-cache"] == "HIT"

    for token in (bob, None):
        seen = (await api.post(profile, {"id": alice_id}, token=token)).json()
        assert seen["data"]["user"]["email"] is None
        assert seen["errors"][0]["extensions"]["code"] in ("FORBIDDEN", "UNAUTHENTICATED")


async def test_public_answers_are_shared_by_every_viewer(api: Api, factory: Factory) -> None:
    await factory.category()
    await api.post(CATEGORIES)

    shared = await api.post(CATEGORIES, token=await api.token("someone@example.com"))

    assert shared.headers["x-cache"] == "HIT"


async def test_fifty_concurrent_identical_misses_run_once(db: Database, factory: Factory) -> None:
    category = await factory.category()
    for i in range(3):
        await factory.product(category_id=category, name=f"P{i}")
    async with cached_app(db, "memory", RATE_LIMIT_ENABLED="false") as api:
        answers = await asyncio.gather(*(api.post(CATEGORIES) for _ in range(50)))
        fifty = len(api.statements)
        api.statements.clear()
        alone = await api.post(CATEGORIES, headers={"Cache-Control": "no-cache"})

    assert sorted(a.headers["x-cache"] for a in answers) == ["HIT"] * 49 + ["MISS"]
    assert {a.content for a in answers} == {answers[0].content}
    assert alone.json()["data"] == answers[0].json()["data"]
    assert fifty == len(api.statements) > 0


async def test_no_cache_skips_the_read_but_stores_the_fresh_answer(
    db: Database, factory: Factory, backend: str
) -> None:
    product = await factory.product(name="Lamp")
    variables = {"id": to_global_id("Product", product)}
    async with cached_app(db, backend, CACHE_ENTITY_TTL="0") as api:
        await api.post(PRODUCT, variables)
        await rename(db, product, "Desk")
        assert (await api.post(PRODUCT, variables)).json()["data"]["product"]["name"] == "Lamp"

        fresh = await api.post(PRODUCT, variables, headers={"Cache-Control": "no-cache"})
        again = await api.post(PRODUCT, variables)

    assert fresh.headers["x-cache"] == "MISS"
    assert fresh.json()["data"]["product"]["name"] == "Desk"
    assert again.headers["x-cache"] == "HIT"
    assert again.json()["data"]["product"]["name"] == "Desk"


async def test_entries_expire_after_their_max_age(
    db: Database, factory: Factory, backend: str
) -> None:
    product = await factory.product(name="Lamp")
    variables = {"id": to_global_id("Product", product)}
    env = {
        "CACHE_STALE_WHILE_REVALIDATE": "0",
        "CACHE_STALE_IF_ERROR": "0",
        "CACHE_ENTITY_TTL": "0",
    }
    async with cached_app(db, backend, **env) as api:
        clock = clock_of(api)
        await api.post(PRODUCT, variables)
        await rename(db, product, "Desk")
        clock.now += 299
        assert (await api.post(PRODUCT, variables)).json()["data"]["product"]["name"] == "Lamp"

        clock.now += 2
        expired = await api.post(PRODUCT, variables)

    assert expired.headers["x-cache"] == "MISS"
    assert expired.json()["data"]["product"]["name"] == "Desk"


async def test_stale_while_revalidate_serves_stale_then_fresh(
    db: Database, factory: Factory, backend: str
) -> None:
    product = await factory.product(name="Lamp")
    variables = {"id": to_global_id("Product", product)}
    env = {"CACHE_STALE_WHILE_REVALIDATE": "30", "CACHE_ENTITY_TTL": "0"}
    async with cached_app(db, backend, **env) as api:
        clock = clock_of(api)
        await api.post(PRODUCT, variables)
        await rename(db, product, "Desk")
        clock.now += 310

        stale = await api.post(PRODUCT, variables)
        fresh = await until(lambda: api.post(PRODUCT, variables), "Desk")

    assert stale.headers["x-cache"] == "STALE"
    assert stale.headers["age"] == "310"
    assert stale.headers["cache-control"] == "public, max-age=0"
    assert stale.json()["data"]["product"]["name"] == "Lamp"
    assert fresh.headers["x-cache"] == "HIT"


async def until(ask: Callable[[], Any], name: str) -> Any:
    """The first answer naming the product `name` (the background refresh has run)."""
    for _ in range(100):
        response = await ask()
        if response.json()["data"]["product"]["name"] == name:
            return response
        await asyncio.sleep(0.01)
    raise AssertionError(f"never saw {name}")


async def test_stale_if_error_serves_the_old_answer_when_the_database_fails(
    db: Database, factory: Factory, backend: str, tmp_path: Any
) -> None:
    product = await factory.product(name="Lamp")
    variables = {"id": to_global_id("Product", product)}
    env = {
        "CACHE_STALE_WHILE_REVALIDATE": "0",
        "CACHE_STALE_IF_ERROR": "600",
        "CACHE_ENTITY_TTL": "0",
    }
    broken = create_engine(
        Settings.from_env({"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/missing/db.sqlite"})
    )
    async with cached_app(db, backend, **env) as api:
        clock = clock_of(api)
        await api.post(PRODUCT, variables)
        clock.now += 400
        api.replace_services(sessionmaker=create_sessionmaker(broken))

        covered = await api.post(PRODUCT, variables)
        uncovered = await api.post("{ categories { name } }")

    await broken.dispose()
    assert covered.status_code == 200
    assert covered.headers["x-cache"] == "STALE"
    assert covered.json()["data"] == {"product": {"name": "Lamp"}}
    assert uncovered.json()["errors"]


async def test_the_entity_cache_serves_other_queries_of_the_same_entity(
    api: Api, factory: Factory
) -> None:
    product = await factory.product(name="Lamp")
    variables = {"id": to_global_id("Product", product)}
    await api.post(PRODUCT, variables)
    api.statements.clear()

    other = await api.post("query($id: ID!) { product(id: $id) { sku name } }", variables)

    assert other.headers["x-cache"] == "MISS"
    assert other.json()["data"]["product"]["name"] == "Lamp"
    assert api.statements == []
