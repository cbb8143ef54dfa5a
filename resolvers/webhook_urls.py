"""The SSRF guard of webhook URLs: which URLs may be called, and at which addresses.

A URL is checked when a webhook is created and again before every attempt,
and the attempt connects to an address this check returned, so a name that
resolves to a public address at creation and to 127.0.0.1 later (DNS
rebinding) is refused at the attempt.

Example:
    target = await check_url("https://example.com/hook", UrlPolicy(), field="input.url")
    target.addresses  # ("93.184.215.14",): connect here, send Host: example.com
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from resolvers.errors import InvalidInput

MAX_URL_LENGTH = 2048


@dataclass(frozen=True, slots=True)
class UrlPolicy:
    """What the server's settings allow beyond public https endpoints."""

    allow_http: bool = False
    allow_private: bool = False


@dataclass(frozen=True, slots=True)
class Target:
    """A checked URL: where to connect (`addresses`, all allowed) and what to ask for."""

    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]


def is_private(address: str) -> bool:
    """Loopback, private, link-local, unspecified, multicast or reserved: not the internet."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def _parse(url: str, policy: UrlPolicy, field: str) -> tuple[str, str, int]:
    if len(url) > MAX_URL_LENGTH:
        raise InvalidInput(f"The URL must be at most {MAX_URL_LENGTH} characters.", field=field)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidInput("The URL is not valid.", field=field) from None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http") or not parts.hostname:
        raise InvalidInput("The URL must be an absolute https:// URL.", field=field)
    if scheme == "http" and not policy.allow_http:
        raise InvalidInput("The URL must use https://.", field=field)
    if parts.username is not None or parts.password is not None:
        raise InvalidInput("The URL must not carry credentials.", field=field)
    return scheme, parts.hostname, port or (443 if scheme == "https" else 80)


async def _resolve(host: str, port: int) -> tuple[str, ...]:
    try:
        ipaddress.ip_address(host)
        return (host,)
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return tuple(dict.fromkeys(str(info[4][0]) for info in infos))


async def check_url(url: str, policy: UrlPolicy, *, field: str) -> Target:
    """The checked target of `url`; InvalidInput (on `field`) when it may not be called."""
    scheme, host, port = _parse(url.strip(), policy, field)
    addresses: tuple[str, ...] = ()
    # Refused below, outside the handler: the error then carries no OSError context
    # (which would read as an unreachable database).
    with contextlib.suppress(OSError):
        addresses = await _resolve(host, port)
    if not addresses:
        raise InvalidInput(f"The host {host!r} does not resolve.", field=field)
    if not policy.allow_private and any(is_private(a) for a in addresses):
        raise InvalidInput(
            "The URL's host resolves to a private, loopback or link-local address.", field=field
        )
    return Target(url.strip(), scheme, host, port, addresses)
