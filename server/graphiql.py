"""GraphiQL served by this process: the page and its vendored assets, nothing from a CDN.

Strawberry's own GraphiQL page loads React and GraphiQL from a CDN and is blank offline. The
assets here are built by server/static/graphiql/build/build.mjs (GraphiQL 3 UMD, React 18).

Example:
    routes = [
        Route("/graphql", graphql_endpoint),  # GET answers graphiql_html(...)
        Mount("/graphiql/static", app=graphiql_static_app()),
    ]
    graphiql_html(endpoint="/graphql", assets_path="/graphiql/static")
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from pathlib import Path
from string import Template
from urllib.parse import urlsplit

from starlette.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).parent / "static" / "graphiql"

# Load order matters: the GraphiQL bundle expects window.React and window.ReactDOM.
SCRIPTS = ("react.production.min.js", "react-dom.production.min.js", "graphiql.min.js")
STYLESHEETS = ("graphiql.min.css",)

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

# Constant, so the page's Content-Security-Policy can allow exactly this inline script by hash.
_BOOT_SCRIPT = """
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("graphiql-config").textContent);

  async function fetcher(params, options) {
    var headers = new Headers({
      "Accept": "application/graphql-response+json, application/json",
      "Content-Type": "application/json"
    });
    var extra = (options && options.headers) || {};
    Object.keys(extra).forEach(function (name) { headers.set(name, extra[name]); });
    var response = await fetch(config.endpoint, {
      method: "POST",
      headers: headers,
      body: JSON.stringify(params),
      credentials: "same-origin"
    });
    var text = await response.text();
    try {
      return JSON.parse(text);
    } catch (error) {
      throw new Error(response.status + " " + response.statusText + ": " + text.slice(0, 2000));
    }
  }

  ReactDOM.createRoot(document.getElementById("graphiql")).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: config.defaultQuery,
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: true,
      defaultEditorToolsVisibility: "headers"
    })
  );
})();
"""

_PAGE = Template("""\
<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <meta http-equiv="Content-Security-Policy" content="$csp">
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
$scripts
    <script type="application/json" id="graphiql-config">$config</script>
    <script>$boot</script>
  </body>
</html>
""")


def graphiql_html(*, endpoint: str, assets_path: str) -> str:
    """The GraphiQL page: assets from `assets_path`, queries POSTed as JSON to `endpoint`.

    Both are URLs as the browser sees them, usually paths ("/graphql", "/graphiql/static").
    The page's Content-Security-Policy lets it load and connect to nothing else.
    """
    base = assets_path.rstrip("/")
    stylesheets = "\n".join(
        f'    <link rel="stylesheet" href="{html.escape(f"{base}/{name}")}">'
        for name in STYLESHEETS
    )
    scripts = "\n".join(
        f'    <script src="{html.escape(f"{base}/{name}")}"></script>' for name in SCRIPTS
    )
    config = json.dumps({"endpoint": endpoint, "defaultQuery": DEFAULT_QUERY})
    # "<" escaped so that no value can close the <script> element it sits in.
    config = config.replace("<", "\\u003c")
    return _PAGE.substitute(
        csp=html.escape(_content_security_policy(endpoint=endpoint, assets_path=assets_path)),
        stylesheets=stylesheets,
        scripts=scripts,
        config=config,
        boot=_BOOT_SCRIPT,
    )


def graphiql_static_app() -> StaticFiles:
    """An ASGI app serving the vendored assets; mount it where `assets_path` points."""
    return StaticFiles(directory=STATIC_DIR)


def _content_security_policy(*, endpoint: str, assets_path: str) -> str:
    boot_hash = base64.b64encode(hashlib.sha256(_BOOT_SCRIPT.encode()).digest()).decode()
    assets = " ".join(["'self'", *_origin(assets_path)])
    # GraphiQL and its UI libraries set inline style attributes; its fonts are data: URIs.
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src {assets} 'sha256-{boot_hash}'",
            f"style-src {assets} 'unsafe-inline'",
            "font-src data:",
            "img-src 'self' data:",
            " ".join(["connect-src 'self'", *_origin(endpoint)]),
            "base-uri 'none'",
            "form-action 'none'",
        ]
    )


def _origin(url: str) -> list[str]:
    """The origin of an absolute URL, as a CSP source; nothing for a path."""
    parts = urlsplit(url)
    return [f"{parts.scheme}://{parts.netloc}"] if parts.scheme and parts.netloc else []
