"""A repeated request's checks are remembered by its bytes; its viewer never is."""

from __future__ import annotations

from typing import Any

import pytest

from schema.executor import Executor
from server.pipeline.prepared_memo import MAX_SOURCE_BYTES, Checked, PreparedMemo
from tests.conftest import Api
from tests.factories import Factory

PRODUCTS = "query($n: Int!) { products(first: $n) { nodes { name } } }"


def count_checks(api: Api, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A counter of the executor's variable checks (the memo's work saved)."""
    executor: Executor = api.services.executor
    calls = [0]
    check = executor.check_variables

    def counted(*args: Any, **kw: Any) -> Any:
        calls[0] += 1
        return check(*args, **kw)

    monkeypatch.setattr(executor, "check_variables", counted)
    return calls


async def test_the_same_bytes_are_checked_once_and_answer_alike(
    api: Api, factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    category = await factory.category()
    for name in ("a", "b"):
        await factory.product(name=name, category_id=category)
    checks = count_checks(api, monkeypatch)
    first = await api.query(PRODUCTS, {"n": 1})
    second = await api.query(PRODUCTS, {"n": 1})
    assert checks[0] == 1
    assert second["data"] == first["data"]
    assert len(first["data"]["products"]["nodes"]) == 1
    other = await api.query(PRODUCTS, {"n": 2})  # other bytes: checked again
    assert checks[0] == 2
    assert len(other["data"]["products"]["nodes"]) == 2
    assert len(api.services.prepared) == 2


async def test_the_viewer_is_asked_on_every_request(api: Api, factory: Factory) -> None:
    token = await api.token("memo@example.com")
    query = "{ viewer { email } }"
    assert (await api.data(query, token=token))["viewer"]["email"] == "memo@example.com"
    assert len(api.services.prepared) == 1
    refused = await api.post(query, token="sf_not_a_token")
    assert refused.status_code == 401
    assert (await api.data(query))["viewer"] is None


async def test_failures_mutations_and_persisted_requests_are_not_remembered(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks = count_checks(api, monkeypatch)
    for _ in range(2):
        bad = await api.post(PRODUCTS, {"n": "many"})
        assert bad.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert checks[0] == 2
    token = await api.token("writer@example.com")
    for _ in range(2):
        body = await api.query(
            'mutation { cancelOrder(id: "T3JkZXI6OTk5OQ==") { id } }', token=token
        )
        assert "data" in body
    persisted = {
        "query": "{ categories { name } }",
        "extensions": {
            "persistedQuery": {
                "version": 1,
                "sha256Hash": "1e9a27bd3de6b7a5fe1e9a4f2e3a41dd0bd3f5fb4c1e3c2fe6b6a7a1c0d0e9f1",
            }
        },
    }
    mismatch = await api.client.post("/graphql", json=persisted)
    assert mismatch.status_code == 400
    assert len(api.services.prepared) == 0


def test_the_memo_is_bounded_in_entries_and_key_size() -> None:
    memo = PreparedMemo(maxsize=2)
    checked: Checked = object()  # type: ignore[assignment]
    memo.put(b"x" * (MAX_SOURCE_BYTES + 1), checked)
    memo.put(None, checked)
    assert len(memo) == 0
    for key in (b"a", b"b", b"c"):
        memo.put(key, checked)
    assert len(memo) == 2
    assert memo.get(b"a") is None
    assert memo.get(b"c") is checked
