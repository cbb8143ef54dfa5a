"""Pure-ASGI response compression: zstd, br or gzip as the client prefers (operations.md).

Why not a library middleware: Starlette's `GZipMiddleware` and `brotli-asgi` do one
coding each; `zstd-asgi` does zstd (and gzip); `starlette-compress` does all three but
ranks them by its own order whatever the q-values say, keeps its content types in a
module-global registry (without `application/graphql-response+json`), and leaves a
strong ETag unchanged on the compressed bytes. The contract needs q-values honoured, and
RFC 9110 (§8.8.3.3) needs each coded representation to carry its own strong ETag, with
conditional requests that still work. The codecs themselves are the maintained
libraries (server/http/codecs.py); negotiation is server/http/accept_encoding.py.

What it does, per response:
- Codes a body of a textual type (JSON, HTML, JS, CSS, ...) of at least `min_bytes`
  (COMPRESSION_MIN_BYTES), or any size if the client refused identity. Fixes
  Content-Length; in a HEAD answer it drops Content-Length (RFC 9110 §9.3.2 allows it).
- Adds `Accept-Encoding` to `Vary` (one header, merged with `Vary: Accept` and the rest)
  on every answer of a type it could code, coded or not, and on every 304.
- Leaves alone what arrives coded (`Content-Encoding` set: pre-compressed GraphiQL
  assets, and cached answers stored compressed, which then own their ETag and Vary),
  `Cache-Control: no-transform`, ranges, 204/304 bodies, and `text/event-stream`.
- Streams: a response sent in several body messages is coded as it goes, each message
  flushed, so nothing is held back.
- ETags: a coded answer's tag is `coded_etag(tag, coding)` (`"abc"` -> `"abc-br"`). A
  request's `If-None-Match` tags of the negotiated coding are handed to the app as the
  body's tags (`"abc-br"` -> `"abc"`), so its conditional logic (cache_headers.py) is
  unchanged; a 304 it answers gets the coded tag back. A tag of another coding stays
  as is, matches nothing, and the client gets the representation it now negotiates.
  A producer that sends coded bytes itself (the GraphiQL assets; the result cache's
  answers, server/http/coded_answer.py) negotiates with `negotiate(header, CODINGS)`,
  tags them with `coded_etag`, and compares `If-None-Match` with the body's tag, as
  the app does.

Default levels (README "Compression"; figures from `bench/compression.py` on the order
dashboard of the medium seed, 27 KB of JSON): zstd 3, br 3, gzip 3. Every level already
takes the answer to 3-4.5 KB (6-10x); past these, the next level costs 1.6-2.8x the CPU
for 0.5-10 % fewer bytes (a few hundred bytes, less than one TCP segment). At them the
answer's coding costs 35-80 µs, under 0.6 % of the ~15 ms of server CPU the dashboard
takes to execute; zstd 19 or br 11 would cost 11-29 ms, as much as the request itself.

Example:
    middleware=[Middleware(ErrorBoundaryMiddleware), *compression(settings)]
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.http.accept_encoding import Negotiated, coded_etag, negotiate, uncoded_etag
from server.http.codecs import CODINGS, Codec, Encoder, configured_codecs
from server.settings import Settings

TEXTUAL = ("text/", "application/json", "application/javascript", "application/xml")
TEXTUAL_SUFFIXES = ("+json", "+xml")
NOT_CODED = ("text/event-stream",)  # long-lived, flushed per event: left to its transport
NO_BODY = (204, 205, 206, 304)
# Sends of a file by path: the server would write the file's bytes, uncoded.
ZERO_COPY = frozenset({"http.response.pathsend", "http.response.zerocopysend"})


def compression(settings: Settings) -> list[Middleware]:
    """The middleware as configured (none with COMPRESSION_ENABLED=false)."""
    codecs = configured_codecs(settings)
    if codecs is None:
        return []
    return [
        Middleware(CompressionMiddleware, codecs=codecs, min_bytes=settings.compression_min_bytes)
    ]


class CompressionMiddleware:
    def __init__(self, app: ASGIApp, *, codecs: Mapping[str, Codec], min_bytes: int) -> None:
        self.app = app
        self.compressor = Compressor(codecs, min_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope, send = self.compressor.wrapped(scope, send)
        await self.app(scope, receive, send)


class Compressor:
    """What the middleware does to one response, for whoever sends it (the middleware,
    and the hit path in front of it: server/http/hit_path.py)."""

    def __init__(self, codecs: Mapping[str, Codec], min_bytes: int) -> None:
        self.codecs = codecs
        self.codings = tuple(name for name in CODINGS if name in codecs)
        self.min_bytes = min_bytes

    def wrapped(self, scope: Scope, send: Send) -> tuple[Scope, Send]:
        """The request as the app is to see it, and the `send` that codes its answer."""
        choice = negotiate(_header(scope["headers"], b"accept-encoding"), self.codings)
        held: frozenset[str] = frozenset()
        if choice.coding is not None:
            scope, held = _for_coding(scope, choice.coding)
        codec = self.codecs[choice.coding] if choice.coding is not None else None
        response = _Response(send, choice, codec, self.min_bytes, held, scope["method"] == "HEAD")
        return scope, response.send

    def code_whole(
        self,
        status: int,
        headers: dict[str, str],
        media_type: str,
        body: bytes,
        accept_encoding: str | None,
    ) -> bytes:
        """What `wrapped` does to an answer sent whole (one body, not HEAD, no
        `If-None-Match`), done to its `headers` by name: the same `Vary`, coding and
        `ETag`, with no ASGI messages to pass through (server/http/hit_path.py). The
        bytes to send; `Content-Length` is the sender's."""
        read = {name.lower(): value for name, value in headers.items()}
        codable = _codable_by(
            status,
            encoding=read.get("content-encoding"),
            ranged="content-range" in read,
            cache_control=read.get("cache-control"),
            content_type=media_type,
        )
        if status == 304 or not codable:
            if status == 304:
                _merge_vary_by_name(headers)
            return body
        _merge_vary_by_name(headers)
        choice = negotiate(accept_encoding, self.codings)
        if choice.coding is None:
            return body
        if choice.identity_acceptable and len(body) < self.min_bytes:
            return body
        codec = self.codecs[choice.coding]
        coded = codec.compress(body)
        headers["Content-Encoding"] = codec.name
        for name, value in headers.items():
            if name.lower() == "etag":
                headers[name] = coded_etag(value, codec.name)
                break
        return coded


class _Response:
    """One response on its way out: held at its start until the body says how to send it."""

    def __init__(
        self,
        send: Send,
        choice: Negotiated,
        codec: Codec | None,
        min_bytes: int,
        held_tags: frozenset[str],
        head: bool,
    ) -> None:
        self._send = send
        self._choice = choice
        self._codec = codec
        self._min_bytes = min_bytes if choice.identity_acceptable else 0
        self._held_tags = held_tags
        self._head = head
        self._start: Message | None = None
        self._encoder: Encoder | None = None

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            await self._on_start(message)
        elif self._start is not None and message["type"] == "http.response.body":
            await self._on_first_body(message)
        elif self._encoder is not None and message["type"] == "http.response.body":
            await self._on_more_body(message)
        else:
            if self._start is not None:  # anything else (trailers, ...): send it uncoded
                start, self._start = self._start, None
                await self._send(start)
            await self._send(message)

    async def _on_start(self, message: Message) -> None:
        headers: list[tuple[bytes, bytes]] = list(message.get("headers", []))
        message["headers"] = headers
        status = message["status"]
        index = _index(headers)
        if status == 304:
            _merge_vary(headers)
            etag = _get(index, b"etag")
            if self._codec is not None and etag is not None and _weakly(etag) in self._held_tags:
                _set(headers, b"etag", coded_etag(etag, self._codec.name))
            await self._send(message)
            return
        if not _codable(status, index):
            await self._send(message)
            return
        _merge_vary(headers)
        if self._codec is None:
            await self._send(message)
            return
        if self._head:
            length = _get(index, b"content-length")
            if length is None or not length.isdigit() or int(length) >= self._min_bytes:
                _mark_coded(headers, self._codec.name, None)
            await self._send(message)
            return
        self._start = message

    async def _on_first_body(self, message: Message) -> None:
        assert self._start is not None
        assert self._codec is not None
        start, self._start = self._start, None
        headers: list[tuple[bytes, bytes]] = start["headers"]
        body: bytes = message.get("body", b"")
        more = bool(message.get("more_body", False))
        length = _header(headers, b"content-length")
        size = int(length) if length is not None and length.isdigit() else None
        if (not more and len(body) < self._min_bytes) or (
            size is not None and size < self._min_bytes
        ):
            await self._send(start)
            await self._send(message)
            return
        if not more:
            coded = self._codec.compress(body)
            _mark_coded(headers, self._codec.name, len(coded))
            await self._send(start)
            await self._send({"type": "http.response.body", "body": coded})
            return
        self._encoder = self._codec.encoder()
        _mark_coded(headers, self._codec.name, None)
        await self._send(start)
        await self._on_more_body(message)

    async def _on_more_body(self, message: Message) -> None:
        assert self._encoder is not None
        body: bytes = message.get("body", b"")
        if message.get("more_body", False):
            if body:
                await self._send(
                    {
                        "type": "http.response.body",
                        "body": self._encoder.chunk(body),
                        "more_body": True,
                    }
                )
            return
        coded = (self._encoder.chunk(body) if body else b"") + self._encoder.finish()
        self._encoder = None
        await self._send({"type": "http.response.body", "body": coded})


def _for_coding(scope: Scope, coding: str) -> tuple[Scope, frozenset[str]]:
    """`scope` with `If-None-Match` tags of `coding` turned into the body's tags (and
    those tags, weakly compared); without the zero-copy file sends a coder cannot code."""
    headers: list[tuple[bytes, bytes]] = []
    held: set[str] = set()
    for name, value in scope["headers"]:
        if name == b"if-none-match":
            tags = []
            for tag in value.decode("latin-1").split(","):
                body_tag = uncoded_etag(tag, coding)
                if body_tag is not None:
                    held.add(_weakly(body_tag))
                tags.append(body_tag or tag.strip())
            value = ", ".join(tags).encode("latin-1")
        headers.append((name, value))
    extensions = scope.get("extensions") or {}
    if not held and not (ZERO_COPY & extensions.keys()):
        return scope, frozenset()
    kept = {key: value for key, value in extensions.items() if key not in ZERO_COPY}
    return {**scope, "headers": headers, "extensions": kept}, frozenset(held)


def _codable(status: int, index: dict[bytes, bytes]) -> bool:
    """A textual answer with a body, not coded yet, that no one asked to keep as is."""
    return _codable_by(
        status,
        encoding=_get(index, b"content-encoding"),
        ranged=b"content-range" in index,
        cache_control=_get(index, b"cache-control"),
        content_type=_get(index, b"content-type"),
    )


def _codable_by(
    status: int,
    *,
    encoding: str | None,
    ranged: bool,
    cache_control: str | None,
    content_type: str | None,
) -> bool:
    """`_codable`, from the headers it reads."""
    if status < 200 or status in NO_BODY:
        return False
    if encoding is not None and encoding.strip().lower() not in ("", "identity"):
        return False
    if ranged:
        return False
    if "no-transform" in (cache_control or "").lower():
        return False
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if not media_type or media_type in NOT_CODED:
        return False
    return media_type.startswith(TEXTUAL) or media_type.endswith(TEXTUAL_SUFFIXES)


def _mark_coded(headers: list[tuple[bytes, bytes]], coding: str, length: int | None) -> None:
    _set(headers, b"content-encoding", coding)
    if length is None:
        _set(headers, b"content-length", None)
    else:
        _set(headers, b"content-length", str(length))
    etag = _header(headers, b"etag")
    if etag is not None:
        _set(headers, b"etag", coded_etag(etag, coding))


def _merge_vary(headers: list[tuple[bytes, bytes]]) -> None:
    """One `Vary` header holding every name already varied on, and `Accept-Encoding`."""
    names: list[str] = []
    others: list[tuple[bytes, bytes]] = []
    for key, value in headers:
        if key.lower() == b"vary":
            names.extend(name.strip() for name in value.decode("latin-1").split(","))
        else:
            others.append((key, value))
    varied = _varied_by_coding(names)
    if varied is None:
        return
    others.append((b"vary", varied.encode("latin-1")))
    headers[:] = others


def _merge_vary_by_name(headers: dict[str, str]) -> None:
    """`_merge_vary` for headers by name (one `Vary` at most)."""
    if "Vary" in headers:  # as this app names it: no scan of every name
        name = "Vary"
    else:
        name = next((n for n in headers if n.lower() == "vary"), "Vary")
    varied = _vary_value_by_coding(headers.get(name, ""))
    if varied is not None:
        headers.pop(name, None)
        headers["Vary"] = varied


@functools.lru_cache(maxsize=256)  # a handful of Vary values, one per answer sent whole
def _vary_value_by_coding(value: str) -> str | None:
    """`_varied_by_coding` of a `Vary` header's value."""
    return _varied_by_coding([name.strip() for name in value.split(",")])


def _varied_by_coding(names: list[str]) -> str | None:
    """The `Vary` value of `names` with `Accept-Encoding`; None for `*` (kept as is)."""
    names = [name for name in names if name]
    if "*" in names:
        return None
    if not any(name.lower() == "accept-encoding" for name in names):
        names.append("Accept-Encoding")
    return ", ".join(names)


def _index(headers: list[tuple[bytes, bytes]]) -> dict[bytes, bytes]:
    """The headers by lower-case name, the first of a repeated one (as `_header` reads)."""
    index: dict[bytes, bytes] = {}
    for key, value in headers:
        index.setdefault(key.lower(), value)
    return index


def _get(index: dict[bytes, bytes], name: bytes) -> str | None:
    value = index.get(name)
    return None if value is None else value.decode("latin-1")


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _set(headers: list[tuple[bytes, bytes]], name: bytes, value: str | None) -> None:
    """Replace every `name` header by one with `value` (none when `value` is None)."""
    headers[:] = [(key, item) for key, item in headers if key.lower() != name]
    if value is not None:
        headers.append((name, value.encode("latin-1")))


def _weakly(etag: str) -> str:
    return etag.strip().removeprefix("W/")
