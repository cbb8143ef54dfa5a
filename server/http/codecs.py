"""The three content codings, each over its maintained library: one-shot and streaming.

zstd is `zstandard` (Python 3.14's `compression.zstd` is not ours on 3.11), br is Google's
`brotli` bindings, gzip is the standard library's zlib (gzip framing, `wbits=31`, so no
file name or time goes in the header and equal bodies give equal bytes).

A streaming encoder flushes after every chunk it is given: a response the app sends in
pieces reaches the client in the same pieces, at some cost in ratio.

Example:
    codecs = Codecs(zstd_level=3, brotli_level=4, gzip_level=6)
    body = codecs["br"].compress(b"...")
    encoder = codecs["zstd"].encoder()
    parts = [encoder.chunk(b"first"), encoder.chunk(b"second"), encoder.finish()]
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

import brotli
import zstandard

from server.settings import Settings

# The server's order of preference when the client weighs codings equally (operations.md).
CODINGS = ("zstd", "br", "gzip")
GZIP_WBITS = 31  # deflate in a gzip wrapper


class Encoder(Protocol):
    """Codes one response body handed over in chunks."""

    def chunk(self, data: bytes) -> bytes: ...  # coded and flushed: decodable so far

    def finish(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Codec:
    """One content coding at one level."""

    name: str
    level: int
    compress: Callable[[bytes], bytes]
    encoder: Callable[[], Encoder]


class _Zstd:
    def __init__(self, level: int) -> None:
        self._coder = zstandard.ZstdCompressor(level=level).compressobj()

    def chunk(self, data: bytes) -> bytes:
        return self._coder.compress(data) + self._coder.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)

    def finish(self) -> bytes:
        return self._coder.flush(zstandard.COMPRESSOBJ_FLUSH_FINISH)


class _Brotli:
    def __init__(self, level: int) -> None:
        self._coder = brotli.Compressor(quality=level)
        # brotli-stubs 1.2.1 lacks Compressor.flush, which the library has had since 1.0.
        self._flush: Callable[[], bytes] = self._coder.flush  # type: ignore[attr-defined]

    def chunk(self, data: bytes) -> bytes:
        return self._coder.process(data) + self._flush()

    def finish(self) -> bytes:
        return self._coder.finish()


class _Gzip:
    def __init__(self, level: int) -> None:
        self._coder = zlib.compressobj(level, zlib.DEFLATED, GZIP_WBITS)

    def chunk(self, data: bytes) -> bytes:
        return self._coder.compress(data) + self._coder.flush(zlib.Z_SYNC_FLUSH)

    def finish(self) -> bytes:
        return self._coder.flush(zlib.Z_FINISH)


def zstd(level: int) -> Codec:
    compressor = zstandard.ZstdCompressor(level=level)  # one-shot: writes the content size
    return Codec("zstd", level, compressor.compress, lambda: _Zstd(level))


def br(level: int) -> Codec:
    return Codec(
        "br", level, lambda data: brotli.compress(data, quality=level), lambda: _Brotli(level)
    )


def gzip(level: int) -> Codec:
    return Codec(
        "gzip", level, lambda data: zlib.compress(data, level, GZIP_WBITS), lambda: _Gzip(level)
    )


class Codecs(Mapping[str, Codec]):
    """The enabled codings by name, in the server's order of preference."""

    def __init__(self, *, zstd_level: int, brotli_level: int, gzip_level: int) -> None:
        self._codecs = {
            "zstd": zstd(zstd_level),
            "br": br(brotli_level),
            "gzip": gzip(gzip_level),
        }

    def __getitem__(self, name: str) -> Codec:
        return self._codecs[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._codecs)

    def __len__(self) -> int:
        return len(self._codecs)


def configured_codecs(settings: Settings) -> Codecs | None:
    """The codecs at the configured levels (the middleware's and the result cache's);
    None with COMPRESSION_ENABLED=false."""
    if not settings.compression_enabled:
        return None
    return Codecs(
        zstd_level=settings.compression_zstd_level,
        brotli_level=settings.compression_br_level,
        gzip_level=settings.compression_gzip_level,
    )
