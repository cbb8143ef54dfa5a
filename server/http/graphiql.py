"""GraphiQL served by this process: the page and its vendored assets, nothing from a CDN.

Strawberry's own GraphiQL page loads React and GraphiQL from a CDN and is blank offline. The
assets here are built by server/http/static/graphiql/build/build.mjs (GraphiQL 3 UMD, React 18).

The page is sent with a Content-Security-Policy header that lets it load and connect to this
server only and lets no page frame it (`frame-ancestors 'none'`, plus `X-Frame-Options: DENY`
for older browsers): a header, because browsers ignore `frame-ancestors` in a <meta> policy.
Headers typed into the editor (a pasted token) stay out of localStorage unless the user turns
on "Persist headers" in GraphiQL's settings.

Example:
    routes = [
        Route("/graphql", graphql_endpoint),  # GET answers graphiql_response(...)
        Mount("/graphiql/static", app=graphiql_static_app()),
    ]
    graphiql_response(endpoint="/graphql", assets_path="/graphiql/static")
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from pathlib import Path
from string import Template
from urllib.parse import urlsplit

from starlette.responses import HTMLResponse

from server.http.graphiql_assets import GraphiQLAssets, hashed_names

STATIC_DIR = Path(__file__).parent / "static" / "graphiql"

# Load order matters: the GraphiQL bundle expects window.React and window.ReactDOM, and
# boot.js (ours: it mounts GraphiQL, and keeps headers out of storage) all three.
SCRIPTS = ("react.production.min.js", "react-dom.production.min.js", "graphiql.min.js", "boot.js")
STYLESHEETS = ("graphiql.min.css",)
# Served too (by plain name only: nothing links it), with the licences of the bundles.
LICENSES = "THIRD_PARTY_LICENSES.txt"

DEFAULT_QUERY = """\
# Storefront API. Ctrl-Enter runs the query.
# To act as a user, put in the Headers tab below:
#   {"Authorization": "Bearer <token>"}
# Tokens: `storefront token create --email you@example.com`,
# or the two (demo admin and customer) printed by `make run`.

{
  products(first: 5) {
    nodes {
      name
      priceCents
    }
  }
}
"""

_PAGE = Template("""\
<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>Storefront GraphiQL</title>
    <link rel="icon" href="data:,">
$stylesheets
    <style>
      html, body { height: 100%; margin: 0; overflow: hidden; }
      #graphiql { height: 100vh; }
    </style>
  </head>
  <body>
    <div id="graphiql">Loading GraphiQL…</div>
    <script type="application/json" id="graphiql-config">$config</script>
$scripts
  </body>
</html>
""")


def graphiql_response(*, endpoint: str, assets_path: str) -> HTMLResponse:
    """The GraphiQL page (see `graphiql_html`) with its security headers.

    `Vary: Accept`: the same GET of the endpoint answers JSON to any other `Accept`.
    """
    policy = content_security_policy(endpoint=endpoint, assets_path=assets_path)
    headers = {
        "Content-Security-Policy": policy,
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Vary": "Accept",
    }
    return HTMLResponse(graphiql_html(endpoint=endpoint, assets_path=assets_path), headers=headers)


def graphiql_html(
    *, endpoint: str, assets_path: str, names: Mapping[str, str] | None = None
) -> str:
    """The GraphiQL page: assets from `assets_path`, queries POSTed as JSON to `endpoint`.

    Both are URLs as the browser sees them, usually paths ("/graphql", "/graphiql/static").
    The assets are linked by their content-hashed `names` (default: hashed from the
    files, ~3 ms for 2 MB), which `graphiql_static_app` serves as immutable.
    Serve it with `content_security_policy(...)` (as `graphiql_response` does): the policy
    lets it load and connect to nothing else.
    """
    base = assets_path.rstrip("/")
    names = names if names is not None else hashed_names(STATIC_DIR, (*STYLESHEETS, *SCRIPTS))
    stylesheets = "\n".join(
        f'    <link rel="stylesheet" href="{html.escape(f"{base}/{names[name]}")}">'
        for name in STYLESHEETS
    )
    scripts = "\n".join(
        f'    <script src="{html.escape(f"{base}/{names[name]}")}"></script>' for name in SCRIPTS
    )
    config = json.dumps({"endpoint": endpoint, "defaultQuery": DEFAULT_QUERY})
    # "<" escaped so that no value can close the <script> element it sits in.
    config = config.replace("<", "\\u003c")
    return _PAGE.substitute(
        stylesheets=stylesheets,
        scripts=scripts,
        config=config,
    )


def graphiql_static_app() -> GraphiQLAssets:
    """An ASGI app serving the vendored assets, pre-compressed, by plain and hashed name;
    mount it where `assets_path` points."""
    return GraphiQLAssets(STATIC_DIR, (*STYLESHEETS, *SCRIPTS, LICENSES))


def content_security_policy(*, endpoint: str, assets_path: str) -> str:
    """The page's policy: our assets (no inline script), requests to `endpoint`, no framing."""
    assets = " ".join(["'self'", *_origin(assets_path)])
    # GraphiQL and its UI libraries set inline style attributes; its fonts are data: URIs.
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src {assets}",
            f"style-src {assets} 'unsafe-inline'",
            "font-src data:",
            "img-src 'self' data:",
            " ".join(["connect-src 'self'", *_origin(endpoint)]),
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


def _origin(url: str) -> list[str]:
    """The origin of an absolute URL, as a CSP source; nothing for a path."""
    parts = urlsplit(url)
    return [f"{parts.scheme}://{parts.netloc}"] if parts.scheme and parts.netloc else []
