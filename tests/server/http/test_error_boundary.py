"""The outermost error boundary: no exception leaves the app as a plain-text 500."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Api, Database
from tests.factories import Factory
from tests.live_server import free_port
from tests.server.apps import serve

GQL_JSON = "application/graphql-response+json"

# Issue 9, item 2: one field's BAD_USER_INPUT made graphql-core cancel a sibling
# awaiting a DataLoader future that other fields shared: CancelledError escaped.
SHARED_FUTURE_QUERY = """{
  a: user(id: "VXNlcjox") { reviews(first: 101) { totalCount } r2: reviews { totalCount } }
  b: user(id: "VXNlcjox") { reviews { totalCount } }
}"""


async def test_a_failing_field_does_not_cancel_a_shared_loader_future(
    api: Api, factory: Factory
) -> None:
    user = await factory.user()
    assert user == 1
    for _ in range(3):
        response = await api.post(SHARED_FUTURE_QUERY)
        assert response.status_code == 200, response.text
        body = response.json()
        codes = [e["extensions"]["code"] for e in body["errors"]]
        assert codes == ["BAD_USER_INPUT"]
        assert body["data"]["b"] == {"reviews": {"totalCount": 0}}


async def test_an_unhandled_exception_is_a_json_500_with_the_request_id(
    api: Api, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from server.http import view as graphql_view

    async def broken(*_args: Any, **_kw: Any) -> Any:
        raise RuntimeError("password=hunter2 in a bug")

    monkeypatch.setattr(graphql_view, "read_request", broken)
    with caplog.at_level(logging.ERROR, logger="storefront.errors"):
        response = await api.post("{ categories { name } }", headers={"Accept": GQL_JSON})
    assert response.status_code == 500
    assert response.headers["content-type"] == GQL_JSON
    error = response.json()["errors"][0]
    assert error == {
        "message": "Internal server error",
        "extensions": {
            "code": "INTERNAL_SERVER_ERROR",
            "requestId": response.headers["x-request-id"],
        },
    }
    assert "hunter2" not in response.text
    logged = [r for r in caplog.records if r.exc_info]
    assert len(logged) == 1  # once, with its traceback
    assert response.headers["x-request-id"] in logged[0].getMessage()


def _unreachable(db: Database, tmp_path: Path) -> str:
    """A database URL of `db`'s backend that cannot be reached."""
    if db.backend == "postgresql":
        return f"postgresql://postgres@127.0.0.1:{free_port()}/storefront"
    return f"sqlite+aiosqlite:///{tmp_path}/missing/storefront.db"


@pytest.mark.parametrize("signed_in", [False, True], ids=["anonymous", "signed-in"])
async def test_an_unreachable_database_is_a_json_503_with_retry_after(
    db: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture, signed_in: bool
) -> None:
    headers = {"Authorization": "Bearer sf_some-token"} if signed_in else {}
    async with serve(db, DATABASE_URL=_unreachable(db, tmp_path)) as api:
        with caplog.at_level(logging.WARNING):
            response = await api.post("{ categories { name } }", headers=headers)
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "5"
    request_id = response.headers["x-request-id"]
    errors = response.json()["errors"]
    assert [e["extensions"]["code"] for e in errors] == ["SERVICE_UNAVAILABLE"]
    assert "retry" in errors[0]["message"]
    assert request_id in caplog.text
    assert "Traceback" not in response.text


async def test_a_response_with_errors_and_no_failure_stays_200(api: Api, factory: Factory) -> None:
    response = await api.post('{ product(id: "UHJvZHVjdDox", sku: "x") { name } }')
    assert response.status_code == 200
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
