"""GraphiQL in headless Chromium: the page works with no network but this server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.live_server import LiveServer, require_node_tools, run_node


def test_graphiql_runs_a_query_with_a_pasted_token(
    e2e_server: LiveServer, e2e_admin_token: str, tmp_path: Path
) -> None:
    node = require_node_tools(chromium=True)

    report = json.loads(
        run_node(node, "graphiql.mjs", e2e_server.url, e2e_admin_token, str(tmp_path / "page.png"))
    )

    assert report["offsite"] == []  # nothing but our own origin was asked for
    assert report["consoleErrors"] == []
    assert report["result"]["data"]["viewer"] == {"email": "e2e@example.com"}
    assert (tmp_path / "page.png").stat().st_size > 0


def test_graphiql_cannot_be_framed_and_keeps_headers_only_when_asked(
    e2e_server: LiveServer, e2e_admin_token: str
) -> None:
    node = require_node_tools(chromium=True)

    report = json.loads(run_node(node, "graphiql-hardening.mjs", e2e_server.url, e2e_admin_token))

    framing = report["framing"]
    # The control, a JSON answer of the same server framed by the same page, renders.
    assert json.loads(framing["controlText"])["data"] == {"__typename": "Query"}
    assert framing["graphiqlRendered"] is False
    assert any("frame-ancestors 'none'" in refusal for refusal in framing["refusals"])

    def holds_token(state: dict[str, Any]) -> dict[str, list[str]]:
        """Which editors and localStorage keys hold the token."""
        token = e2e_admin_token
        return {
            "editors": [e for e in state["editors"] if token in (e or "")],
            "storage": [k for k, v in state["storage"].items() if token in (v or "")],
        }

    headers = report["headers"]
    nothing: dict[str, list[str]] = {"editors": [], "storage": []}
    # Typed and used in a query, then the page reloaded: gone from the editor and storage.
    assert holds_token(headers["byDefault"]) == nothing
    assert headers["byDefault"]["storage"]["graphiql:shouldPersistHeaders"] == "false"
    # "Persist headers" turned on: kept across reloads, in the editor and its tab.
    for reload in ("optedIn", "optedInSecondReload"):
        held = holds_token(headers[reload])
        assert len(held["editors"]) == 1, reload
        assert set(held["storage"]) == {"graphiql:headers", "graphiql:tabState"}, reload
    # Turned off again: dropped.
    assert holds_token(headers["optedOut"]) == nothing
    # A token persisted before headers were opt-in is dropped on the first visit.
    assert holds_token(headers["legacy"]) == nothing
    assert holds_token(headers["legacyAfterReload"]) == nothing
