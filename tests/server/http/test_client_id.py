"""Who is charged: the user, else the IP, with X-Forwarded-For believed only from our proxies."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from loaders.records import UserRecord
from resolvers.viewer import ANONYMOUS, Viewer
from server.http.client_id import client_ip, client_key, parse_networks

PROXIES = parse_networks("10.0.0.0/8, 127.0.0.1, 2001:db8::/32")


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("203.0.113.7", None, "203.0.113.7"),
        # Not from a trusted proxy: the header is anyone's claim.
        ("203.0.113.7", "198.51.100.1", "203.0.113.7"),
        ("10.0.0.5", "198.51.100.1", "198.51.100.1"),
        # The client's own entries sit left of what our proxies appended.
        ("10.0.0.5", "6.6.6.6, 198.51.100.1, 10.0.0.9", "198.51.100.1"),
        ("127.0.0.1", "10.1.1.1, 10.2.2.2", "10.1.1.1"),  # every hop ours: the leftmost
        ("10.0.0.5", "garbage, 198.51.100.1", "198.51.100.1"),
        ("10.0.0.5", "198.51.100.1, garbage", "10.0.0.5"),
        ("10.0.0.5", "", "10.0.0.5"),
        ("2001:db8::1", "2001:db8::2, 2606:4700::1111", "2606:4700::1111"),
        ("::ffff:10.0.0.5", "198.51.100.1", "198.51.100.1"),  # IPv4-mapped peer
        (None, "198.51.100.1", "unknown"),
    ],
)
def test_client_ip(peer: str | None, forwarded: str | None, expected: str) -> None:
    assert client_ip(peer, forwarded, PROXIES) == expected


def test_without_trusted_proxies_the_header_is_ignored() -> None:
    assert client_ip("127.0.0.1", "198.51.100.1", ()) == "127.0.0.1"


def test_client_key() -> None:
    user = UserRecord(42, "ann@example.com", "Ann", None, "customer", datetime.now(UTC))
    assert client_key(viewer=Viewer(user), ip="203.0.113.7") == "user:42"
    assert client_key(viewer=ANONYMOUS, ip="203.0.113.7") == "ip:203.0.113.7"


def test_parse_networks() -> None:
    assert parse_networks("") == ()
    assert [str(n) for n in parse_networks(" 10.1.2.3/8 ,::1")] == ["10.0.0.0/8", "::1/128"]
    with pytest.raises(ValueError, match="nonsense"):
        parse_networks("nonsense")
