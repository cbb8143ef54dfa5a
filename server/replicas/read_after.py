"""The read-after token: where a client's last write ended in the primary's WAL.

After a mutation the answer carries the token twice: in the `X-Read-After`
header and in the `sf_read_after` cookie (HttpOnly, SameSite=Lax, short-lived).
A client sends it back in either (the header wins); until a replica has
replayed past the position, that client's reads go to the primary. The token is
`<LSN>@<ms since the epoch>` (`0/3000148@1764612000000`), or `-@<ms>` when the
position could not be read: then the client reads the primary for
REPLICA_STICKY_SECONDS. A token older than its lifetime, or one that does not
parse, is ignored.

Example:
    token = encode(ReadAfter(lsn=parse_lsn("0/3000148"), written_at=time.time()))
    decode(token, now=time.time(), lifetime=10.0)  # -> ReadAfter(lsn=50331976, ...)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

READ_AFTER_HEADER = "X-Read-After"
READ_AFTER_COOKIE = "sf_read_after"
_HEADER = READ_AFTER_HEADER.lower()  # as the request's headers are read
_COOKIE_PREFIX = READ_AFTER_COOKIE + "="
# A token from the future (clock skew between instances) is believed this far ahead.
_SKEW = 1.0


@dataclass(frozen=True, slots=True)
class ReadAfter:
    """A client's last write: its WAL position (None when unknown) and its time."""

    lsn: int | None
    written_at: float


def parse_lsn(text: str) -> int:
    """PostgreSQL's `X/Y` text of a WAL position (two hex halves) as one number."""
    high, low = text.split("/")
    if not (0 < len(high) <= 8 and 0 < len(low) <= 8):
        raise ValueError(f"not a WAL position: {text!r}")
    return (int(high, 16) << 32) | int(low, 16)


def format_lsn(lsn: int) -> str:
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def encode(token: ReadAfter) -> str:
    position = "-" if token.lsn is None else format_lsn(token.lsn)
    return f"{position}@{int(token.written_at * 1000)}"


def decode(raw: str, *, now: float, lifetime: float) -> ReadAfter | None:
    """The token in `raw`, or None when it does not parse or is out of its lifetime."""
    position, _, millis = raw.partition("@")
    try:
        written_at = int(millis) / 1000
        lsn = None if position == "-" else parse_lsn(position)
    except ValueError:
        return None
    if not now - lifetime <= written_at <= now + _SKEW:
        return None
    return ReadAfter(lsn, written_at)


def token_of(headers: Mapping[str, str]) -> str | None:
    """The raw token a request carries: its header, else its cookie (lower-case names)."""
    token = headers.get(_HEADER)
    if token:
        return token.strip()
    cookies = headers.get("cookie")
    if not cookies or _COOKIE_PREFIX not in cookies:
        return None
    for cookie in cookies.split(";"):
        name, _, value = cookie.strip().partition("=")
        if name == READ_AFTER_COOKIE:
            return value.strip('"')
    return None


def response_headers(token: str, *, lifetime: float) -> dict[str, str]:
    """What a write's answer says: the token as a header and as a cookie living `lifetime` s."""
    max_age = max(1, int(lifetime + 0.999))
    cookie = f"{READ_AFTER_COOKIE}={token}; Max-Age={max_age}; Path=/; HttpOnly; SameSite=Lax"
    return {READ_AFTER_HEADER: token, "Set-Cookie": cookie}
