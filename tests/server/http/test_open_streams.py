"""Open streams closed with a tail decode, in every coding and by every decoder at hand,
to exactly the prefix and the tail; an entry keeps them through its stored bytes."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import zlib
from collections.abc import Callable

import brotli
import orjson
import pytest
import zstandard
from httpx._decoders import BrotliDecoder, ContentDecoder, GZipDecoder, ZStandardDecoder

from server.cache.cached_response import CachedResponse, Served, with_extensions
from server.http.codecs import Codecs
from server.http.coded_answer import coded_answer
from server.http.open_streams import close_stream, open_stream, open_streams

CODECS = Codecs(zstd_level=3, brotli_level=3, gzip_level=3)
BODY = orjson.dumps(
    {
        "data": {
            "orders": [{"id": n, "total": n * 3.25, "state": "PAID" * (n % 5)} for n in range(800)]
        }
    }
)
TAILS = {
    "closing brace": b"}",
    "extensions": b',"extensions":{"cost":{"requestedQueryCost":12,"actualQueryCost":9}}}',
    "over one block": b',"x":"' + bytes(range(65, 91)) * 6000 + b'"}',
}
HTTPX: dict[str, Callable[[], ContentDecoder]] = {
    "gzip": GZipDecoder,
    "br": BrotliDecoder,
    "zstd": ZStandardDecoder,
}
LIBRARY: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.decompress,
    "br": brotli.decompress,
    "zstd": lambda data: zstandard.ZstdDecompressor().decompressobj().decompress(data),
}
COMMANDS = {"gzip": ["gzip", "-dc"], "zstd": ["zstd", "-dc"], "br": ["brotli", "-dc"]}


def closed(coding: str, tail: bytes) -> bytes:
    return close_stream(open_stream(CODECS[coding], BODY[:-1]), tail)


@pytest.mark.parametrize("tail", TAILS.values(), ids=TAILS.keys())
@pytest.mark.parametrize("coding", ["zstd", "br", "gzip"])
def test_a_closed_stream_decodes_to_prefix_and_tail(coding: str, tail: bytes) -> None:
    coded = closed(coding, tail)
    whole = BODY[:-1] + tail

    assert LIBRARY[coding](coded) == whole
    decoder = HTTPX[coding]()
    assert decoder.decode(coded) + decoder.flush() == whole
    # Fed in small pieces, as a network delivers it.
    decoder = HTTPX[coding]()
    pieces = [decoder.decode(coded[i : i + 100]) for i in range(0, len(coded), 100)]
    assert b"".join(pieces) + decoder.flush() == whole


@pytest.mark.parametrize("coding", ["zstd", "br", "gzip"])
def test_command_line_decoders_read_it(coding: str) -> None:
    command = COMMANDS[coding]
    if shutil.which(command[0]) is None:
        # CI installs them (`make decoders`): there a missing one is a failure.
        missing = pytest.fail if os.environ.get("CI") else pytest.skip
        missing(f"no {command[0]} here: `make decoders` installs it")
    tail = TAILS["extensions"]
    decoded = subprocess.run(command, input=closed(coding, tail), capture_output=True, check=True)
    assert decoded.stdout == BODY[:-1] + tail


def test_gzip_is_one_member_with_the_whole_bodys_crc_and_length() -> None:
    tail = TAILS["extensions"]
    coded = closed("gzip", tail)
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)

    assert inflater.decompress(coded) == BODY[:-1] + tail
    assert inflater.eof
    assert inflater.unused_data == b""  # one member: clients reading only one get it all


def test_the_prefix_is_compressed_and_the_tail_is_not() -> None:
    for coding in ("zstd", "br", "gzip"):
        stream = open_stream(CODECS[coding], BODY[:-1])
        tail = TAILS["extensions"]

        assert len(stream.data) < len(BODY) / 4
        assert tail in close_stream(stream, tail)  # the tail goes as it is: nothing to compress


def test_small_bodies_get_no_streams() -> None:
    assert open_streams(CODECS, b'{"data":{}}', min_bytes=1024) == []
    assert [s.coding for s in open_streams(CODECS, BODY, min_bytes=1024)] == ["zstd", "br", "gzip"]


def test_an_entry_keeps_its_streams_through_its_stored_bytes() -> None:
    entry = CachedResponse(
        BODY, '"tag"', 60, False, 1.5, {"actual": 3}, tuple(open_streams(CODECS, BODY, min_bytes=0))
    )
    again = CachedResponse.decode(entry.encode())
    served = with_extensions(BODY, {"cost": {"actualQueryCost": 3}})

    assert again == entry
    for coding in ("zstd", "br", "gzip"):
        coded = again.coded_body(coding, served)
        assert coded is not None
        assert LIBRARY[coding](coded) == served
    assert again.coded_body("br", b'{"other":1}') is None  # not this entry's answer


def test_an_entry_stored_before_streams_still_reads() -> None:
    plain = CachedResponse(BODY, '"tag"', 60, True, 2.0, {})
    assert (
        plain.encode()
        == orjson.dumps({"e": '"tag"', "m": 60, "p": True, "s": 2.0, "x": {}}) + b"\n" + BODY
    )
    again = CachedResponse.decode(plain.encode())
    assert again == plain
    assert again.coded_body("gzip", BODY) is None


def test_a_cached_answer_is_sent_coded_only_where_compression_is_on() -> None:
    entry = CachedResponse(
        BODY, '"tag"', 60, False, 1.5, {}, tuple(open_streams(CODECS, BODY, min_bytes=0))
    )
    served = Served.cached(entry)
    body = with_extensions(BODY, {"cost": {"actualQueryCost": 3}})

    coded = coded_answer(served, body, "gzip;q=0.5, br", min_bytes=1024)
    assert coded is not None
    assert coded.coding == "br"
    assert brotli.decompress(coded.body) == body
    assert coded_answer(served, body, "br", min_bytes=None) is None  # off on this instance
    assert coded_answer(served, body, "identity", min_bytes=1024) is None
    assert coded_answer(served, body, "br", min_bytes=len(body) + 1) is None  # too small
    assert coded_answer(served, body, "br;q=1, identity;q=0", min_bytes=len(body) + 1) is not None
