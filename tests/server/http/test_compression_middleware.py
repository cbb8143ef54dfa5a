"""The compression middleware around small apps: streams, coded answers, what it leaves alone."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator

import brotli
import httpx
import pytest
import zstandard
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Message

from server.http.accept_encoding import Negotiated, coded_etag, negotiate, uncoded_etag
from server.http.codecs import CODINGS, Codecs
from server.http.compression import CompressionMiddleware

TEXT = b"".join(b"line %d of a long enough text answer\n" % number for number in range(200))


def app_answering(response: Response, *, min_bytes: int = 1024) -> Starlette:
    async def endpoint(_request: Request) -> Response:
        return response

    codecs = Codecs(zstd_level=3, brotli_level=4, gzip_level=6)
    return Starlette(
        routes=[Route("/", endpoint)],
        middleware=[Middleware(CompressionMiddleware, codecs=codecs, min_bytes=min_bytes)],
    )


async def get(app: Starlette, accept_encoding: str) -> httpx.Response:
    """The answer as sent, body left coded, called over ASGI directly (httpx's transport
    would join the body messages): each body message is one item of `parts`."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"test"), (b"accept-encoding", accept_encoding.encode())],
        "server": ("test", 80),
    }
    messages: list[Message] = []
    requests = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> Message:
        if requests:
            return requests.pop()
        await asyncio.Event().wait()  # the client never disconnects
        raise AssertionError

    async def send(message: Message) -> None:
        messages.append(message)

    await app(scope, receive, send)
    start, *bodies = messages
    response = httpx.Response(start["status"], headers=start["headers"])
    response.extensions["parts"] = [body["body"] for body in bodies if body["body"]]
    response._content = b"".join(response.extensions["parts"])
    return response


async def chunks() -> AsyncIterator[bytes]:
    for start in range(0, len(TEXT), 1000):
        yield TEXT[start : start + 1000]


@pytest.mark.parametrize("coding", CODINGS)
async def test_a_streamed_answer_is_coded_as_it_goes_and_each_part_decodes(coding: str) -> None:
    response = await get(
        app_answering(StreamingResponse(chunks(), media_type="text/plain")), coding
    )

    assert response.headers["content-encoding"] == coding
    assert "content-length" not in response.headers
    decoder = {
        "zstd": zstandard.ZstdDecompressor().decompressobj(),
        "br": brotli.Decompressor(),
        "gzip": zlib.decompressobj(31),
    }[coding]
    decode = decoder.process if isinstance(decoder, brotli.Decompressor) else decoder.decompress
    # Every part was flushed: what arrived so far decodes to what the app sent so far.
    so_far = b""
    for number, part in enumerate(response.extensions["parts"], start=1):
        so_far += decode(part)
        assert so_far == TEXT[: number * 1000]
    assert so_far == TEXT


async def test_an_answer_already_coded_is_not_coded_again() -> None:
    coded = zlib.compress(TEXT, 6, 31)
    response = Response(coded, media_type="text/plain", headers={"Content-Encoding": "gzip"})

    sent = await get(app_answering(response), "zstd, br, gzip")

    assert sent.headers["content-encoding"] == "gzip"
    assert sent.content == coded


@pytest.mark.parametrize(
    ("media_type", "headers"),
    [
        ("image/png", {}),  # not text: already compressed as a rule
        ("text/event-stream", {}),  # long-lived: left to its transport
        ("text/plain", {"Cache-Control": "no-transform"}),
        ("text/plain", {"Content-Range": "bytes 0-99/7000"}),
    ],
)
async def test_what_it_leaves_alone(media_type: str, headers: dict[str, str]) -> None:
    response = Response(TEXT, media_type=media_type, headers=headers)

    sent = await get(app_answering(response), "gzip")

    assert "content-encoding" not in sent.headers
    assert sent.content == TEXT


async def test_every_vary_is_merged_into_one_header_and_none_repeated() -> None:
    response = Response(TEXT, media_type="application/json")
    response.headers.append("Vary", "Accept")
    response.headers.append("Vary", "Origin, accept-encoding")
    star = Response(TEXT, media_type="application/json", headers={"Vary": "*"})

    sent = await get(app_answering(response), "gzip")
    starred = await get(app_answering(star), "gzip")

    assert sent.headers.get_list("vary") == ["Accept, Origin, accept-encoding"]
    assert starred.headers.get_list("vary") == ["*"]


async def test_a_weak_etag_stays_weak_and_gets_the_coding() -> None:
    response = Response(TEXT, media_type="text/plain", headers={"ETag": 'W/"v1"'})

    sent = await get(app_answering(response), "br")

    assert sent.headers["etag"] == 'W/"v1-br"'


def test_etags_of_codings_round_trip() -> None:
    assert coded_etag('"abc"', "zstd") == '"abc-zstd"'
    assert uncoded_etag('"abc-zstd"', "zstd") == '"abc"'
    assert uncoded_etag('W/"abc-br"', "br") == 'W/"abc"'
    assert uncoded_etag('"abc-br"', "gzip") is None
    assert uncoded_etag('"-br"', "br") is None


@pytest.mark.parametrize(
    ("header", "negotiated"),
    [
        (None, Negotiated(None)),
        ("", Negotiated(None)),
        ("gzip, identity;q=0", Negotiated("gzip", identity_acceptable=False)),
        ("*;q=0, br", Negotiated("br", identity_acceptable=False)),
        ("*;q=0, identity, br;q=0.5", Negotiated(None)),
        # Nothing acceptable at all: the header is disregarded, identity sent (no 406).
        ("identity;q=0", Negotiated(None)),
        ("br;q=1.5, gzip", Negotiated("gzip")),  # a weight out of range drops its item
    ],
)
def test_identity_rules(header: str | None, negotiated: Negotiated) -> None:
    assert negotiate(header, CODINGS) == negotiated
