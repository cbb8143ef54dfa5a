"""A result-cache answer sent in the coding the client negotiates, from its stored streams.

An entry of the result cache carries its answer already compressed in each coding
(server/http/open_streams.py); this sends that instead of leaving the compression
middleware (server/http/compression.py) to code the bytes again. What goes out is what
the middleware would have sent: the same negotiation (`negotiate`, CODINGS) and
threshold, `Content-Encoding`, the coding's ETag (`coded_etag`) and `Accept-Encoding`
in the one `Vary`; the middleware passes coded answers through untouched. Conditional
requests need nothing here: the middleware hands the view the body's tags and puts the
coding's tag back on its 304 whichever way the 200 was coded.

When the entry has no stream for the coding (compression was off when it was stored,
or it was too small), nothing changes: the middleware codes it as it would any answer.

Example:
    coded = coded_answer(result.served, body, request.headers.get("accept-encoding"),
                         min_bytes=settings.compression_min_bytes)
    if coded is not None:
        body = coded.apply(headers)
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass

from server.cache.cached_response import Served
from server.http.accept_encoding import coded_etag, negotiate
from server.http.codecs import CODINGS


@dataclass(frozen=True, slots=True)
class CodedAnswer:
    """The answer's bytes in `coding`."""

    coding: str
    body: bytes

    def apply(self, headers: MutableMapping[str, str]) -> bytes:
        """Marks `headers` (the answer's, with `Vary` and `ETag` of its media type) as
        those of this coding's representation; returns the bytes to send."""
        headers["Content-Encoding"] = self.coding
        varies = [name.strip() for name in headers.get("Vary", "").split(",") if name.strip()]
        if not any(name.lower() == "accept-encoding" for name in varies):
            varies.append("Accept-Encoding")
        headers["Vary"] = ", ".join(varies)
        if "ETag" in headers:
            headers["ETag"] = coded_etag(headers["ETag"], self.coding)
        return self.body


def coded_answer(
    served: Served | None, body: bytes, accept_encoding: str | None, *, min_bytes: int | None
) -> CodedAnswer | None:
    """`body` (the served entry's bytes with this request's extensions) in the coding
    `accept_encoding` negotiates, closed from the entry's stored stream; None when it
    goes uncoded, the entry has no stream of that coding, or compression is off here
    (`min_bytes` None: an entry in a shared Redis may come from an instance with it on)."""
    entry = served.entry if served is not None else None
    if entry is None or not entry.coded or min_bytes is None:
        return None
    choice = negotiate(accept_encoding, CODINGS)
    if choice.coding is None or (choice.identity_acceptable and len(body) < min_bytes):
        return None
    coded = entry.coded_body(choice.coding, body)
    return None if coded is None else CodedAnswer(choice.coding, coded)
