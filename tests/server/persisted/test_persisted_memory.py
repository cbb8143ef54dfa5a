"""Random APQ registrations cannot grow memory without bound."""

from __future__ import annotations

import secrets
from pathlib import Path

from server.persisted.protocol import sha256_hex
from server.persisted.stores import InMemoryPersistedQueryStore
from tests.conftest import Database
from tests.transport_support import app_api, register


def rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def random_query() -> str:
    return f"query R{secrets.token_hex(16)} {{ products(first: 1) {{ totalCount }} }}"


async def test_100_000_random_registrations_stay_within_the_store_bounds() -> None:
    store = InMemoryPersistedQueryStore(max_entries=10_000, max_bytes=1024 * 1024)
    before = rss_kb()

    for i in range(100_000):
        query = random_query() + " " * secrets.randbelow(200)
        # 1000 clients, each within its quota of 100 new documents per window.
        await store.put_automatic(sha256_hex(query), query, registrant=f"ip:{i % 1000}")

    assert len(store) <= 10_000
    assert store.automatic_bytes <= 1024 * 1024
    assert rss_kb() - before < 64 * 1024  # kilobytes: well under 64 MB of growth


async def test_registrations_through_http_keep_every_cache_bounded(db: Database) -> None:
    env = {
        "APQ_MEMORY_ENTRIES": "50",
        "PERSISTED_DOCUMENT_CACHE_SIZE": "20",
        "APQ_REGISTRATIONS_PER_CLIENT": "1000",
    }
    async with app_api(db, env) as api:
        for _ in range(300):
            response = await api.client.post("/graphql", json=register(random_query()))
            assert response.status_code == 200, response.text

        persisted = api.services.persisted_queries
        assert len(persisted.store) == 50
        assert persisted.cached_documents == 20
