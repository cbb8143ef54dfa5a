"""`Accept-Encoding` negotiation (RFC 9110 §12.5.3) and the entity tags of coded representations.

The client's preference decides: the acceptable coding with the highest q-value wins,
ties going to the server's order (zstd > br > gzip) and, last, to no coding at all.
`*` stands for every coding the header does not name, `identity` included; `q=0`
refuses. A header that is absent or empty asks for identity (curl and other plain
clients send none and could not read a compressed body).

A content coding is part of the representation, so a strong ETag of a coded
representation must differ from the identity one (RFC 9110 §8.8.3.3, whose example is
exactly `"xyzzy"` / `"xyzzy-gzip"`): `coded_etag` appends `-<coding>` inside the quotes.

Example:
    choice = negotiate("gzip;q=0.8, br, zstd;q=0.5", ("zstd", "br", "gzip"))
    assert choice == Negotiated(coding="br", identity_acceptable=True)
    coded_etag('"abc"', "br")  # '"abc-br"'
"""

from __future__ import annotations

import functools
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Negotiated:
    """What to send: `coding` (None: no coding), and whether identity is still acceptable.

    When the client refused identity (`identity;q=0`, or `*;q=0` without naming it), a
    body is coded whatever its size; if no coding is acceptable either, the header is
    disregarded and identity is sent (RFC 9110 §12.1 allows it) rather than a 406.
    """

    coding: str | None
    identity_acceptable: bool = True


IDENTITY_ONLY = Negotiated(coding=None)


@functools.lru_cache(maxsize=256)  # clients repeat their header; asked twice per answer
def negotiate(header: str | None, codings: tuple[str, ...]) -> Negotiated:
    """The best of `codings` (in the server's order of preference) for `header`."""
    if not header or not codings:
        return IDENTITY_ONLY
    weights = _weights(header)
    if weights is None:
        return IDENTITY_ONLY
    default = weights.get("*")
    identity = weights.get("identity", default if default is not None else 1.0)
    best: str | None = None
    best_q = 0.0
    for coding in codings:
        q = weights.get(coding, default if default is not None else 0.0)
        if q > best_q:  # strictly: a tie keeps the server's earlier coding
            best, best_q = coding, q
    if best is None:
        return Negotiated(coding=None, identity_acceptable=True)
    if identity > best_q:
        return IDENTITY_ONLY
    return Negotiated(coding=best, identity_acceptable=identity > 0)


def _weights(header: str) -> dict[str, float] | None:
    """Each named coding's q-value (`*` included); None for a header that is all noise."""
    weights: dict[str, float] = {}
    for item in header.split(","):
        coding, _, params = item.partition(";")
        coding = coding.strip().lower()
        if not coding:
            continue
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = -1.0
        if not 0.0 <= q <= 1.0:  # a malformed weight: ignore that item, not the header
            continue
        # A coding named twice keeps its highest weight.
        weights[coding] = max(q, weights.get(coding, 0.0))
    return weights or None


def coded_etag(etag: str, coding: str) -> str:
    """The tag of the `coding` representation of the body tagged `etag` (weak stays weak)."""
    weak, opaque = _split(etag)
    return f'{weak}"{opaque}-{coding}"'


def uncoded_etag(etag: str, coding: str) -> str | None:
    """The body's tag behind `etag` if it is the `coding` representation's, else None."""
    weak, opaque = _split(etag)
    suffix = f"-{coding}"
    if opaque.endswith(suffix) and len(opaque) > len(suffix):
        return f'{weak}"{opaque[: -len(suffix)]}"'
    return None


def _split(etag: str) -> tuple[str, str]:
    etag = etag.strip()
    weak = "W/" if etag.startswith("W/") else ""
    return weak, etag.removeprefix("W/").strip('"')
