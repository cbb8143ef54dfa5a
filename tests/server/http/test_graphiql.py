"""The offline GraphiQL page: it loads only our own assets, and we serve every one of them."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from html.parser import HTMLParser

import httpx
import pytest
import pytest_asyncio

from server.http.graphiql import (
    SCRIPTS,
    STATIC_DIR,
    STYLESHEETS,
    content_security_policy,
    graphiql_html,
)
from server.http.graphiql_assets import hashed_names
from server.settings import Settings
from tests.conftest import Database
from tests.server.apps import serve

ASSETS_PATH = "/graphiql/static"
# What Chromium sends when navigating to a page.
BROWSER_ACCEPT = (
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
)


class Page(HTMLParser):
    """What a browser would fetch or run from a page: URLs and inline scripts."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts: list[tuple[str, str]] = []  # (type, text)
        self._script: tuple[str, list[str]] | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "script" and "src" in attributes:
            self.urls.append(attributes["src"])
        elif tag == "script":
            self._script = (attributes.get("type", ""), [])
        elif tag == "link":
            self.urls.append(attributes["href"])

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            self._script[1].append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._script is not None:
            self.inline_scripts.append((self._script[0], "".join(self._script[1])))
            self._script = None


@pytest_asyncio.fixture
async def client(db: Database) -> AsyncIterator[httpx.AsyncClient]:
    """The real app (development: GraphiQL on)."""
    async with serve(db) as api:
        yield api.client


async def page_of(client: httpx.AsyncClient) -> httpx.Response:
    response: httpx.Response = await client.get("/graphql", headers={"Accept": BROWSER_ACCEPT})
    return response


async def test_page_references_only_local_assets(client: httpx.AsyncClient) -> None:
    response = await page_of(client)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = Page(response.text)
    local = [url for url in page.urls if url.startswith(f"{ASSETS_PATH}/")]
    names = hashed_names(STATIC_DIR, (*STYLESHEETS, *SCRIPTS))
    assert local == [f"{ASSETS_PATH}/{names[name]}" for name in (*STYLESHEETS, *SCRIPTS)]
    assert [url for url in page.urls if url not in local] == ["data:,"]  # the empty favicon
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", response.text)


async def test_every_referenced_asset_is_served(client: httpx.AsyncClient) -> None:
    page = Page((await page_of(client)).text)
    by_hashed_name = {
        hashed: name for name, hashed in hashed_names(STATIC_DIR, (*STYLESHEETS, *SCRIPTS)).items()
    }

    for url in page.urls:
        if url.startswith("data:"):
            continue
        response = await client.get(url)
        assert response.status_code == 200, url
        expected = "text/css" if url.endswith(".css") else "javascript"
        assert expected in response.headers["content-type"], url
        assert response.content == (STATIC_DIR / by_hashed_name[url.rsplit("/", 1)[1]]).read_bytes()


async def test_page_configures_endpoint_headers_editor_and_example(
    client: httpx.AsyncClient,
) -> None:
    page = Page((await page_of(client)).text)

    scripts = dict(page.inline_scripts)
    config = json.loads(scripts["application/json"])
    assert config["endpoint"] == "/graphql"
    assert "products(first: 5)" in config["defaultQuery"]
    boot = (await client.get(f"{ASSETS_PATH}/boot.js")).text
    assert "isHeadersEditorEnabled: true" in boot
    # Off unless the user opted in; the browser test drives the rest.
    assert 'shouldPersistHeaders: storage !== null && storage.getItem(PERSIST) === "true"' in boot
    assert '"Accept": "application/graphql-response+json, application/json"' in boot
    assert '"Content-Type": "application/json"' in boot


def directives(policy: str) -> dict[str, str]:
    return dict(d.strip().split(" ", 1) for d in policy.split(";"))


async def test_policy_allows_our_scripts_and_no_inline_one(client: httpx.AsyncClient) -> None:
    response = await page_of(client)

    assert [kind for kind, _ in Page(response.text).inline_scripts] == ["application/json"]
    policy = directives(response.headers["content-security-policy"])
    assert policy["script-src"] == "'self'"
    assert policy["default-src"] == "'none'"
    assert policy["connect-src"] == "'self'"


async def test_no_page_may_frame_graphiql(client: httpx.AsyncClient) -> None:
    response = await page_of(client)

    # A header: browsers ignore frame-ancestors in a <meta> policy.
    assert directives(response.headers["content-security-policy"])["frame-ancestors"] == "'none'"
    assert response.headers["x-frame-options"] == "DENY"
    assert "http-equiv" not in response.text.lower()
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers.get_list("vary") == [
        "Accept, Accept-Encoding"
    ]  # JSON to any other Accept


def test_config_values_cannot_close_their_script_element() -> None:
    endpoint = "/graphql</script><script>alert(1)</script>"

    names = {name: f"{name}.hashed" for name in (*STYLESHEETS, *SCRIPTS)}
    page = Page(graphiql_html(endpoint=endpoint, assets_path="/static/", names=names))

    assert json.loads(dict(page.inline_scripts)["application/json"])["endpoint"] == endpoint
    assert page.urls[1:] == [f"/static/{names[name]}" for name in (*STYLESHEETS, *SCRIPTS)]


def test_absolute_endpoint_is_allowed_by_the_policy() -> None:
    policy = content_security_policy(endpoint="https://api.example.test/graphql", assets_path="/s")

    assert directives(policy)["connect-src"] == "'self' https://api.example.test"


@pytest.mark.parametrize("name", [*STYLESHEETS, *SCRIPTS])
def test_vendored_assets_fetch_nothing_at_run_time(name: str) -> None:
    text = (STATIC_DIR / name).read_text(encoding="utf-8")

    assert "sourceMappingURL" not in text
    if name.endswith(".css"):
        assert "@import" not in text
        assert re.findall(r"url\(\s*['\"]?(?!data:)", text) == []


@pytest.mark.parametrize(
    ("env", "served"),
    [
        ({}, True),
        ({"ENVIRONMENT": "production"}, False),
        ({"ENVIRONMENT": "production", "GRAPHIQL": "true"}, True),
        ({"GRAPHIQL": "false"}, False),
    ],
)
async def test_graphiql_is_off_in_production_unless_asked_for(
    db: Database, env: dict[str, str], served: bool
) -> None:
    assert Settings.from_env(env).graphiql is served
    async with serve(db, **env) as api:
        browser = await api.client.get("/graphql", headers={"Accept": BROWSER_ACCEPT})
        html_only = await api.client.get("/graphql", headers={"Accept": "text/html"})
        asset = await api.client.get(f"{ASSETS_PATH}/{SCRIPTS[-1]}")
        query = await api.client.get(
            "/graphql", params={"query": "{ __typename }"}, headers={"Accept": BROWSER_ACCEPT}
        )

    # A query is answered either way.
    assert query.status_code == 200
    assert query.json()["data"] == {"__typename": "Query"}
    if served:
        assert browser.headers["content-type"].startswith("text/html")
        assert "<title>Storefront GraphiQL</title>" in browser.text
        assert asset.status_code == 200
        return
    # As any GraphQL GET without a query: a JSON 400 when the client accepts JSON
    # (browsers send */*), 406 when it accepts only HTML.
    assert browser.status_code == 400
    assert browser.headers["content-type"] == "application/json"
    assert browser.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert html_only.status_code == 406
    assert html_only.headers["content-type"] == "application/json"
    assert "GraphiQL" not in browser.text + html_only.text
    assert asset.status_code == 404
