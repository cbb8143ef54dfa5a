"""GraphiQL's vendored assets: content-hashed names, immutable caching, served pre-compressed.

Each asset is also served under a name carrying a hash of its bytes
(`graphiql.min.3f9c0a1b2c3d4e5f.js`); the page links those, so a browser may keep them
forever (`Cache-Control: public, max-age=31536000, immutable`) and a new build is new
URLs. The plain names still answer, revalidated each time (`no-cache`, with an ETag).

Pre-compressed, not compressed per request: an asset is coded once per process and
coding, the first time a client asks for it in that coding, in a worker thread so the
event loop keeps serving; every later request is a dict lookup. Not committed beside the
sources (three coded copies would add ~2 MB to the repository at every GraphiQL
upgrade), and not at startup (every process, and every test's app, would pay for it
even when no one opens GraphiQL). Since a first visitor waits for it, the levels are the
best that stay well under a second for the whole 2 MB set (measured unloaded): zstd 19
(~0.55 s, 685 KB), br 9 (~0.2 s, 702 KB), gzip 9 (~0.1 s, 744 KB). br 10-11 would save
another 6 % for ~3-6 s on the 1.5 MB bundle alone, once per process.

The ETag of a coded copy is the body's with the coding appended (`coded_etag`), as the
compression middleware gives it to answers it codes; that middleware leaves these
responses alone, since they arrive with their Content-Encoding set.

Example:
    assets = GraphiQLAssets(STATIC_DIR, ("graphiql.min.js", "boot.js"))
    Mount("/graphiql/static", app=assets)
    assets.names["boot.js"]  # "boot.<hash>.js", the URL the page links
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from starlette.types import Receive, Scope, Send

from server.http import codecs
from server.http.accept_encoding import coded_etag, negotiate
from server.http.codecs import CODINGS

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
}
# One-off work per process, on a first visitor's request: see the module's docstring.
ASSET_CODECS: Mapping[str, Callable[[], codecs.Codec]] = {
    "zstd": lambda: codecs.zstd(19),
    "br": lambda: codecs.br(9),
    "gzip": lambda: codecs.gzip(9),
}


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    media_type: str
    digest: str
    immutable: bool

    @property
    def etag(self) -> str:
        return f'"{self.digest}"'


def hashed_name(name: str, body: bytes) -> str:
    """`name` with a hash of `body` before its extension: `boot.js` -> `boot.<hash>.js`."""
    stem, _, extension = name.rpartition(".")
    return f"{stem}.{digest_of(body)}.{extension}"


def digest_of(body: bytes) -> str:
    return hashlib.blake2b(body, digest_size=8).hexdigest()


def hashed_names(directory: Path, names: Sequence[str]) -> dict[str, str]:
    """Each asset's hashed name, by its plain name."""
    return {name: hashed_name(name, (directory / name).read_bytes()) for name in names}


class GraphiQLAssets:
    """ASGI app serving `names` from `directory`, by plain and hashed name (GET, HEAD)."""

    def __init__(self, directory: Path, names: Sequence[str]) -> None:
        self.names: dict[str, str] = {}
        self._assets: dict[str, Asset] = {}
        for name in names:
            body = (directory / name).read_bytes()
            media_type = MEDIA_TYPES[Path(name).suffix]
            self.names[name] = hashed_name(name, body)
            self._assets[name] = Asset(body, media_type, digest_of(body), immutable=False)
            self._assets[self.names[name]] = Asset(body, media_type, digest_of(body), True)
        self._coded: dict[tuple[str, str], bytes] = {}  # (digest, coding) -> coded body
        self._building: dict[tuple[str, str], asyncio.Lock] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        root, path = scope.get("root_path", ""), scope["path"]
        name = path[len(root) :].removeprefix("/") if path.startswith(root) else path
        asset = self._assets.get(name)
        if asset is None:
            plain = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"9")]
            await _answer(send, 404, plain, b"Not Found")
            return
        if scope["method"] not in ("GET", "HEAD"):
            await _answer(send, 405, [(b"allow", b"GET, HEAD"), (b"content-length", b"0")], b"")
            return
        request = {
            key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]
        }
        coding = negotiate(request.get("accept-encoding"), CODINGS).coding
        body = asset.body if coding is None else await self._coded_body(asset, coding)
        etag = asset.etag if coding is None else coded_etag(asset.etag, coding)
        headers = [
            (b"cache-control", (IMMUTABLE if asset.immutable else REVALIDATE).encode()),
            (b"vary", b"Accept-Encoding"),
            (b"etag", etag.encode()),
            (b"x-content-type-options", b"nosniff"),
        ]
        if _matches(request.get("if-none-match"), asset.etag, etag):
            await _answer(send, 304, headers, b"")
            return
        headers += [(b"content-type", asset.media_type.encode())]
        headers += [(b"content-encoding", coding.encode())] if coding is not None else []
        headers += [(b"content-length", str(len(body)).encode())]
        await _answer(send, 200, headers, b"" if scope["method"] == "HEAD" else body)

    async def _coded_body(self, asset: Asset, coding: str) -> bytes:
        key = (asset.digest, coding)
        if key not in self._coded:
            async with self._building.setdefault(key, asyncio.Lock()):
                if key not in self._coded:
                    # A codec of its own: zstandard's compressors are not thread-safe.
                    compress = ASSET_CODECS[coding]().compress
                    self._coded[key] = await asyncio.to_thread(compress, asset.body)
        return self._coded[key]


def _matches(if_none_match: str | None, *etags: str) -> bool:
    """Weak comparison (RFC 9110 §13.1.2): the body's tag, as the compression middleware
    hands a coded tag back, or the coded one itself."""
    if not if_none_match:
        return False
    held = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in held or any(etag in held for etag in etags)


async def _answer(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
