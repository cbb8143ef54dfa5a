"""GraphiQL in headless Chromium: the page works with no network but this server."""

from __future__ import annotations

import json
from pathlib import Path

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
