"""How a setting is declared and read: its variable, reader, bound and README row.

`server/settings.py` declares every setting with `setting(...)`; this module holds
the vocabulary it is declared in (readers, bounds) and the error they raise.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from server.http.client_id import Network, parse_networks

_T = TypeVar("_T")


class SettingsError(ValueError):
    """An environment variable has a value that cannot be used."""


@dataclass(frozen=True, slots=True)
class Reader:
    """Turns a variable's non-empty text into a value, or raises SettingsError."""

    parse: Callable[[str, str], Any]  # (variable, raw text) -> value
    accepts: str  # README's "accepts" column


@dataclass(frozen=True, slots=True)
class Bound:
    """A condition every value (read or default) must meet."""

    holds: Callable[[Any], bool]
    requirement: str  # completes "<VARIABLE> must be …"
    accepts: str

    def check(self, name: str, value: Any) -> None:
        if not self.holds(value):
            raise SettingsError(f"{name} must be {self.requirement}, got {value}")


@dataclass(frozen=True, slots=True)
class Variable:
    """How one `Settings` field is read from the environment, and its README row."""

    name: str
    read: Reader
    doc: str
    bound: Bound | None = None
    # A default that depends on settings declared above it (by field name), and its README text.
    derive: Callable[[Mapping[str, Any]], Any] | None = None
    shown_default: str | None = None


def setting(
    name: str,
    default: _T,
    read: Reader,
    doc: str,
    *,
    bound: Bound | None = None,
    derive: Callable[[Mapping[str, Any]], _T] | None = None,
    shown_default: str | None = None,
) -> _T:
    """A `Settings` field read from the variable `name` (unset or empty: the default)."""
    variable = Variable(name, read, doc, bound, derive, shown_default)
    return field(default=default, metadata={"variable": variable})


def _whole(name: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from None


def _number(name: str, raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number (e.g. 0.5), got {raw!r}") from None


def _flag(name: str, raw: str) -> bool:
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name} must be true or false (or 1/0, yes/no, on/off), got {raw!r}")


def _networks(name: str, raw: str) -> tuple[Network, ...]:
    try:
        return parse_networks(raw)
    except ValueError as error:
        raise SettingsError(
            f"{name} must be a comma-separated list of IP addresses or networks"
            f" (e.g. 10.0.0.0/8, 127.0.0.1): {error}"
        ) from None


def _thresholds(name: str, raw: str) -> tuple[int, int, int]:
    try:
        gen0, gen1, gen2 = (int(part) for part in raw.split(","))
    except ValueError:
        raise SettingsError(
            f"{name} must be three whole numbers gen0,gen1,gen2, got {raw!r}"
        ) from None
    return gen0, gen1, gen2


def _items(_name: str, raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def choice(choices: tuple[str, ...]) -> Reader:
    """One of `choices`, case-insensitive."""

    def parse(name: str, raw: str) -> str:
        if raw.lower() not in choices:
            raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {raw.lower()!r}")
        return raw.lower()

    return Reader(parse, ", ".join(f"`{value}`" for value in choices))


def text(accepts: str, convert: Callable[[str], Any] = str) -> Reader:
    """Any text, passed through `convert`."""
    return Reader(lambda _name, raw: convert(raw), accepts)


WHOLE = Reader(_whole, "whole number")
NUMBER = Reader(_number, "number")
FLAG = Reader(_flag, "boolean")
NETWORKS = Reader(_networks, "comma-separated IP addresses or networks")
ORIGINS = Reader(_items, "comma-separated origins")
THRESHOLDS = Reader(_thresholds, "three whole numbers `gen0,gen1,gen2`")

# Written as "not below" so that `nan` passes, as it always has.
POSITIVE = Bound(lambda value: not value <= 0, "greater than 0", "> 0")
NON_NEGATIVE = Bound(lambda value: not value < 0, "0 or more", "≥ 0")
# gen0 at 0 would turn the collector off: GC_TUNING=false is the way to leave it alone.
GC_THRESHOLD_RANGE = Bound(
    lambda value: value[0] > 0 and min(value) >= 0,
    "gen0 above 0, gen1 and gen2 0 or more",
    "(gen0 > 0)",
)
PORT_RANGE = Bound(lambda value: 0 <= value <= 65535, "between 0 and 65535", "from 0 to 65535")


def between(low: int, high: int) -> Bound:
    """A whole range, both ends included (a codec's levels)."""
    return Bound(
        lambda value: low <= value <= high,
        f"between {low} and {high}",
        f"from {low} to {high}",
    )
