"""Choosing the response media type from `Accept`."""

from __future__ import annotations

import pytest

from server.http.negotiation import (
    APPLICATION_JSON,
    GRAPHQL_RESPONSE_JSON,
    response_media_type,
    wants_graphiql,
)


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, APPLICATION_JSON),
        ("", APPLICATION_JSON),
        ("*/*", APPLICATION_JSON),
        ("application/*", APPLICATION_JSON),
        ("application/json", APPLICATION_JSON),
        ("application/graphql-response+json", GRAPHQL_RESPONSE_JSON),
        ("application/graphql-response+json, application/json", GRAPHQL_RESPONSE_JSON),
        ("application/json, application/graphql-response+json", GRAPHQL_RESPONSE_JSON),
        ("application/graphql-response+json;q=0.5, application/json", APPLICATION_JSON),
        ("application/graphql-response+json,application/json;q=0.9", GRAPHQL_RESPONSE_JSON),
        ("application/json;q=0, */*", GRAPHQL_RESPONSE_JSON),
        ("Application/JSON; charset=utf-8", APPLICATION_JSON),
        ("text/html, */*;q=0.8", APPLICATION_JSON),
        ("text/csv", None),
        ("application/json;q=0", None),
        ("application/graphql-response+json;q=0, application/json;q=0", None),
        ("application/json;q=oops", None),
    ],
)
def test_response_media_type(accept: str | None, expected: str | None) -> None:
    assert response_media_type(accept) == expected


def test_graphiql_is_for_browsers_navigating_without_a_query() -> None:
    html = "text/html,application/xhtml+xml,*/*;q=0.8"
    assert wants_graphiql(method="GET", accept=html, has_query=False)
    assert not wants_graphiql(method="GET", accept=html, has_query=True)
    assert not wants_graphiql(method="POST", accept=html, has_query=False)
    assert not wants_graphiql(method="GET", accept="application/json", has_query=False)
