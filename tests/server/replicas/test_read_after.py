"""The read-after token: WAL positions, its two carriers, its lifetime."""

from __future__ import annotations

import pytest

from server.replicas.read_after import (
    READ_AFTER_COOKIE,
    READ_AFTER_HEADER,
    ReadAfter,
    decode,
    encode,
    format_lsn,
    parse_lsn,
    response_headers,
    token_of,
)

NOW = 1_764_612_000.0


@pytest.mark.parametrize("text", ["0/0", "0/3000148", "16/B374D848", "FFFFFFFF/FFFFFFFF"])
def test_wal_positions_round_trip_and_order_as_postgresql_does(text: str) -> None:
    assert format_lsn(parse_lsn(text)) == text
    assert parse_lsn("1/0") > parse_lsn("0/FFFFFFFF")


def test_a_token_round_trips_with_or_without_a_position() -> None:
    for lsn in (parse_lsn("16/B374D848"), None):
        token = encode(ReadAfter(lsn, NOW))
        assert decode(token, now=NOW + 1, lifetime=5) == ReadAfter(lsn, NOW)


@pytest.mark.parametrize(
    "raw",
    ["", "junk", "0/1", "0/1@", "0/1@x", "x/y@1764612000000", "/1@1764612000000", "1/@1"],
)
def test_a_token_that_does_not_parse_is_ignored(raw: str) -> None:
    assert decode(raw, now=NOW, lifetime=5) is None


def test_a_token_out_of_its_lifetime_is_ignored() -> None:
    token = encode(ReadAfter(parse_lsn("0/10"), NOW))
    assert decode(token, now=NOW + 4.9, lifetime=5) is not None
    assert decode(token, now=NOW + 5.1, lifetime=5) is None
    assert decode(token, now=NOW - 10, lifetime=5) is None  # from the future


def test_the_header_wins_over_the_cookie() -> None:
    cookie = f"a=1; {READ_AFTER_COOKIE}=0/20@5; b=2"
    assert token_of({"cookie": cookie}) == "0/20@5"
    assert token_of({"cookie": cookie, READ_AFTER_HEADER.lower(): "0/30@5"}) == "0/30@5"
    assert token_of({"cookie": "a=1"}) is None
    assert token_of({}) is None


def test_a_write_answer_sets_both_carriers() -> None:
    headers = response_headers("0/20@5", lifetime=6.5)
    assert headers[READ_AFTER_HEADER] == "0/20@5"
    assert headers["Set-Cookie"] == (
        f"{READ_AFTER_COOKIE}=0/20@5; Max-Age=7; Path=/; HttpOnly; SameSite=Lax"
    )
