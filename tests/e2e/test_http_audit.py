"""graphql-http's `auditServer`: the GraphQL-over-HTTP spec's audits against a live server."""

from __future__ import annotations

import json

from tests.live_server import LiveServer, require_node_tools, run_node

# SHOULD audits this server does not meet, each with its reason in the README
# ("GraphQL over HTTP: conformance"). Empty: every audit passes.
UNMET_SHOULDS: set[str] = set()


def test_every_must_and_should_audit_passes(e2e_server: LiveServer) -> None:
    node = require_node_tools()

    report = json.loads(run_node(node, "audit.mjs", e2e_server.graphql))

    assert report["errors"] == []
    assert {w["name"] for w in report["warnings"]} == UNMET_SHOULDS, report["warnings"]
    assert report["ok"] + len(report["warnings"]) == report["total"] >= 50
