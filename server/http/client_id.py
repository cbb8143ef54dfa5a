"""Who a request's cost is charged to: the token's user, else the client's IP address.

`X-Forwarded-For` is read only when the connection comes from a trusted proxy
(setting TRUSTED_PROXIES), and then from the right: each trusted proxy appends
the address it saw, so the first address that is not a trusted proxy is the
client. Anything to its left was written by the client and proves nothing.

Example:
    proxies = parse_networks("10.0.0.0/8, 127.0.0.1")
    client_key(viewer=viewer, ip=client_ip("10.1.2.3", "198.51.100.9, 10.0.0.5", proxies))
    # -> "ip:198.51.100.9" for an anonymous viewer, "user:42" for user 42
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: settings import this module, the CLI imports settings
    from starlette.requests import Request

    from resolvers.viewer import Viewer

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_networks(raw: str) -> tuple[Network, ...]:
    """Comma-separated addresses or CIDR networks; ValueError for a malformed one."""
    return tuple(
        ipaddress.ip_network(part.strip(), strict=False) for part in raw.split(",") if part.strip()
    )


@functools.lru_cache(maxsize=4096)
def _address(text: str) -> Address | None:
    """`text` as an address (IPv4-mapped IPv6 as IPv4); remembered, as parsing one costs
    more than the rest of finding a request's client."""
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: Address, proxies: Sequence[Network]) -> bool:
    return any(address in network for network in proxies)


@functools.lru_cache(maxsize=4096)
def _peer_text(peer: str) -> str:
    address = _address(peer)
    return peer if address is None else str(address)


def client_ip(peer: str | None, forwarded_for: str | None, proxies: Sequence[Network]) -> str:
    """The client's address: the peer's, or from `X-Forwarded-For` behind trusted proxies."""
    if peer is None:
        return "unknown"
    if not forwarded_for or not proxies:
        return _peer_text(peer) or "unknown"
    address = _address(peer)
    if address is None:
        return peer or "unknown"
    if not _trusted(address, proxies):
        return str(address)
    for hop in reversed(forwarded_for.split(",")):
        forwarded = _address(hop)
        if forwarded is None:
            break  # not written by a proxy of ours: the last good hop is the client
        address = forwarded
        if not _trusted(address, proxies):
            break
    return str(address)


def client_key(*, viewer: Viewer, ip: str) -> str:
    """The bucket's key: `user:<id>` for a signed-in viewer, else `ip:<address>`."""
    return f"user:{viewer.user.id}" if viewer.user is not None else f"ip:{ip}"


def request_client_key(request: Request, *, viewer: Viewer, proxies: Sequence[Network]) -> str:
    """The bucket's key of an HTTP request."""
    peer = request.client.host if request.client else None
    ip = client_ip(peer, request.headers.get("x-forwarded-for"), proxies)
    return client_key(viewer=viewer, ip=ip)
