"""Coded answers left open, so a cached answer is compressed once and closed per request.

A cached GraphQL answer is served as its stored bytes with this request's
`extensions` appended (server/cache/cached_response.py `with_extensions`), so its
coded form cannot be stored whole. What is stored instead is the answer's prefix
(every byte but its closing `}`) coded as an *open* stream: compressed and flushed to
a byte boundary, not finished. A hit closes it with the request's tail (the
`,"extensions":{...}}` bytes) as an uncompressed block of the same stream, then the
stream's end. That is framing, not compression: no codec runs on a hit, and the
result is one ordinary stream every decoder reads:

- gzip: deflate flushed with Z_SYNC_FLUSH, then a final *stored* deflate block
  (RFC 1951 §3.2.4) per 65535 bytes of tail, then the gzip trailer: CRC-32 of the
  whole (the prefix's CRC kept, extended over the tail) and its length.
- zstd: the frame's blocks flushed (no content size, no checksum in the header),
  then a *raw* block (RFC 8878 §3.1.1.2.2) marked last.
- br: the stream flushed (BROTLI_OPERATION_FLUSH leaves it byte-aligned), then an
  *uncompressed* meta-block (RFC 7932 §9.2) and an empty last meta-block.

Why not separate members or frames: gzip members and zstd frames may be concatenated by
their RFCs, but httpx's gzip decoder (and others) stop after the first member and would
silently drop the tail; brotli has no concatenation at all.

Example:
    stream = open_stream(codecs["br"], body[:-1])          # once, when stored
    coded = close_stream(stream, b',"extensions":{}}')     # per hit: framing only
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass

from server.http.codecs import Codec

# The largest piece of tail one uncompressed block carries, in every coding (gzip's
# stored block length is 16 bits; brotli's with 4 nibbles and zstd's are larger).
MAX_PIECE = 0xFFFF
BROTLI_LAST_EMPTY = b"\x03"  # ISLAST=1, ISLASTEMPTY=1, padded to the byte
# Bodies this much under the threshold may still pass it once their extensions are on.
TAIL_ALLOWANCE = 512


@dataclass(frozen=True, slots=True)
class OpenStream:
    """A prefix coded in `coding`, not finished; `crc` and `size` are the prefix's
    CRC-32 and length (the gzip trailer needs them; the others ignore them)."""

    coding: str
    data: bytes
    crc: int = 0
    size: int = 0


def open_stream(codec: Codec, prefix: bytes) -> OpenStream:
    """`prefix` compressed by `codec` and flushed, left open for `close_stream`."""
    data = codec.encoder().chunk(prefix)
    crc = zlib.crc32(prefix) if codec.name == "gzip" else 0
    return OpenStream(codec.name, data, crc, len(prefix))


def open_streams(codecs: Mapping[str, Codec], body: bytes, *, min_bytes: int) -> list[OpenStream]:
    """The open streams of a stored answer's prefix in every coding of `codecs`; none
    for an answer too small to be coded even with its extensions on."""
    if len(body) + TAIL_ALLOWANCE < min_bytes:
        return []
    prefix = body[:-1]
    return [open_stream(codec, prefix) for codec in codecs.values()]


def close_stream(stream: OpenStream, tail: bytes) -> bytes:
    """The whole coded body: `stream` with `tail` appended uncompressed, and its end."""
    pieces = [tail[i : i + MAX_PIECE] for i in range(0, len(tail), MAX_PIECE)] or [b""]
    if stream.coding == "gzip":
        return _close_gzip(stream, pieces, tail)
    if stream.coding == "zstd":
        return _close_zstd(stream, pieces)
    if stream.coding == "br":
        return _close_brotli(stream, pieces)
    raise ValueError(f"no open stream for coding {stream.coding!r}")


def _close_gzip(stream: OpenStream, pieces: list[bytes], tail: bytes) -> bytes:
    out = [stream.data]
    for index, piece in enumerate(pieces):
        final = index == len(pieces) - 1
        # BFINAL, BTYPE=00 (stored), padded to the byte; then LEN and its complement.
        out.append(struct.pack("<BHH", int(final), len(piece), len(piece) ^ 0xFFFF))
        out.append(piece)
    crc = zlib.crc32(tail, stream.crc)
    out.append(struct.pack("<II", crc, (stream.size + len(tail)) & 0xFFFFFFFF))
    return b"".join(out)


def _close_zstd(stream: OpenStream, pieces: list[bytes]) -> bytes:
    out = [stream.data]
    for index, piece in enumerate(pieces):
        last = int(index == len(pieces) - 1)
        # Block header, 3 bytes little-endian: Last_Block, Block_Type=0 (raw), Block_Size.
        out.append((last | len(piece) << 3).to_bytes(3, "little"))
        out.append(piece)
    return b"".join(out)


def _close_brotli(stream: OpenStream, pieces: list[bytes]) -> bytes:
    out = [stream.data]
    for piece in pieces:
        if not piece:
            continue
        # ISLAST=0, MNIBBLES=0 (4 nibbles), MLEN-1 in 16 bits, ISUNCOMPRESSED=1; 20 bits,
        # padded with zeros to the byte, then the bytes as they are.
        header = (len(piece) - 1) << 3 | 1 << 19
        out.append(header.to_bytes(3, "little"))
        out.append(piece)
    out.append(BROTLI_LAST_EMPTY)
    return b"".join(out)
