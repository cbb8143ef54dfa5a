"""The offline GraphiQL page: it loads only our own assets, and we serve every one of them."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import AsyncIterator
from html.parser import HTMLParser

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route

from server.graphiql import SCRIPTS, STATIC_DIR, STYLESHEETS, graphiql_html, graphiql_static_app

ASSETS_PATH = "/graphiql/static"


class Page(HTMLParser):
    """What a browser would fetch or run from a page: URLs, inline scripts, the CSP."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts: list[tuple[str, str]] = []  # (type, text)
        self.csp = ""
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
        elif tag == "meta" and attributes.get("http-equiv") == "Content-Security-Policy":
            self.csp = attributes["content"]

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            self._script[1].append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._script is not None:
            self.inline_scripts.append((self._script[0], "".join(self._script[1])))
            self._script = None


async def graphql_endpoint(request: Request) -> Response:
    if request.method == "GET":
        return HTMLResponse(graphiql_html(endpoint="/graphql", assets_path=ASSETS_PATH))
    await request.json()
    return JSONResponse({"data": {"__typename": "Query"}})


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = Starlette(
        routes=[
            Route("/graphql", graphql_endpoint, methods=["GET", "POST"]),
            Mount(ASSETS_PATH, app=graphiql_static_app()),
        ]
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def test_page_references_only_local_assets(client: httpx.AsyncClient) -> None:
    response = await client.get("/graphql")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = Page(response.text)
    local = [url for url in page.urls if url.startswith(f"{ASSETS_PATH}/")]
    assert local == [f"{ASSETS_PATH}/{name}" for name in (*STYLESHEETS, *SCRIPTS)]
    assert [url for url in page.urls if url not in local] == ["data:,"]  # the empty favicon
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", response.text)


async def test_every_referenced_asset_is_served(client: httpx.AsyncClient) -> None:
    page = Page((await client.get("/graphql")).text)

    for url in page.urls:
        if url.startswith("data:"):
            continue
        response = await client.get(url)
        assert response.status_code == 200, url
        expected = "text/css" if url.endswith(".css") else "javascript"
        assert expected in response.headers["content-type"], url
        assert response.content == (STATIC_DIR / url.rsplit("/", 1)[1]).read_bytes()


async def test_page_configures_endpoint_headers_editor_and_example(
    client: httpx.AsyncClient,
) -> None:
    page = Page((await client.get("/graphql")).text)

    scripts = dict(page.inline_scripts)
    config = json.loads(scripts["application/json"])
    assert config["endpoint"] == "/graphql"
    assert "products(first: 5)" in config["defaultQuery"]
    boot = scripts[""]
    assert "isHeadersEditorEnabled: true" in boot
    assert "shouldPersistHeaders: true" in boot
    assert '"Accept": "application/graphql-response+json, application/json"' in boot
    assert '"Content-Type": "application/json"' in boot


async def test_policy_allows_exactly_the_inline_boot_script(client: httpx.AsyncClient) -> None:
    page = Page((await client.get("/graphql")).text)

    boot = dict(page.inline_scripts)[""]
    digest = base64.b64encode(hashlib.sha256(boot.encode()).digest()).decode()
    directives = dict(d.strip().split(" ", 1) for d in page.csp.split(";"))
    assert directives["script-src"] == f"'self' 'sha256-{digest}'"
    assert directives["default-src"] == "'none'"
    assert directives["connect-src"] == "'self'"


def test_config_values_cannot_close_their_script_element() -> None:
    endpoint = "/graphql</script><script>alert(1)</script>"

    page = Page(graphiql_html(endpoint=endpoint, assets_path="/static/"))

    assert json.loads(dict(page.inline_scripts)["application/json"])["endpoint"] == endpoint
    assert page.urls[1:] == [f"/static/{name}" for name in (*STYLESHEETS, *SCRIPTS)]


def test_absolute_endpoint_is_allowed_by_the_policy() -> None:
    page = Page(graphiql_html(endpoint="https://api.example.test/graphql", assets_path="/s"))

    assert "connect-src 'self' https://api.example.test" in page.csp


@pytest.mark.parametrize("name", [*STYLESHEETS, *SCRIPTS])
def test_vendored_assets_fetch_nothing_at_run_time(name: str) -> None:
    text = (STATIC_DIR / name).read_text(encoding="utf-8")

    assert "sourceMappingURL" not in text
    if name.endswith(".css"):
        assert "@import" not in text
        assert re.findall(r"url\(\s*['\"]?(?!data:)", text) == []
