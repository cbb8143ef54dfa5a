"""Apollo Client's persisted-queries link against a live server, POST and GET."""

from __future__ import annotations

import json

from tests.live_server import LiveServer, require_node_tools, run_node


def test_apollo_persisted_query_link(e2e_server: LiveServer) -> None:
    node = require_node_tools()

    report = json.loads(run_node(node, "apollo.mjs", e2e_server.graphql))

    expected = [
        "{} hash -> 200 PERSISTED_QUERY_NOT_FOUND",
        "POST document -> 200 data",
        "{} hash -> 200 data",
        "{} hash -> 200 data",
    ]
    assert report["post"] == [line.format("POST") for line in expected]
    assert report["get"] == [line.format("GET") for line in expected]
