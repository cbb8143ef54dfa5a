"""An operation's compiled cost plan: priced with variables, counted on a response.

`schema/cost.py` compiles a document's operation into these values once (the
rules are in its docstring); here they are only evaluated. Every size that does
not depend on a variable is folded into `static` constants when a field or
selection is finished, so `requested(variables)` multiplies out only the few
sizes that do, and `actual(data)` applies the same rules to the response.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import Undefined


@dataclass(frozen=True, slots=True)
class Size:
    """A list's size: `constant`, or the variable's value (its length) when it is given."""

    constant: int
    variable: str | None = None
    length: bool = False

    def value(self, variables: Mapping[str, Any]) -> int:
        if self.variable is None:
            return self.constant
        value = variables.get(self.variable)
        if value is None:  # absent or null: the argument's default applies
            return self.constant
        if self.length:
            return len(value) if isinstance(value, list) else 1
        return max(0, value) if isinstance(value, int) else self.constant


# No operation is free, not even `{ __typename }`: each request is work for the server.
MIN_OPERATION_COST = 1


@dataclass(frozen=True, slots=True)
class Extra:
    """An argument's weight that depends on a variable: charged when the variable's
    value, followed down `keys`, is given (not null, not an empty string)."""

    weight: int
    variable: str
    keys: tuple[str, ...]

    def value(self, variables: Mapping[str, Any]) -> int:
        value: Any = variables.get(self.variable)
        for key in self.keys:
            value = value.get(key) if isinstance(value, Mapping) else None
        return self.weight if given(value) else 0


@dataclass(slots=True)
class PlannedField:
    key: str
    weight: int
    size: Size | None  # None: one value, not a list
    selection: Selection | None
    extras: tuple[Extra, ...] = ()  # weights that depend on variables
    static: int | None = None  # the requested cost when no variable is involved
    item_flat: int | None = None  # one item's cost when nothing below it is a list

    def weight_with(self, variables: Mapping[str, Any]) -> int:
        return self.weight + sum(extra.value(variables) for extra in self.extras)


@dataclass(slots=True)
class Selection:
    fields: list[PlannedField] = field(default_factory=list)
    spreads: list[Selection] = field(default_factory=list)  # fragments, shared
    variants: dict[str, Selection] = field(default_factory=dict)  # on concrete types: max
    static: int | None = None
    flat: int | None = None

    def finish(self) -> Selection:
        parts = [f.static for f in self.fields] + [s.static for s in self.spreads]
        variants = [v.static for v in self.variants.values()]
        if None not in parts and None not in variants:
            self.static = sum(p or 0 for p in parts) + max((v or 0 for v in variants), default=0)
        flats = [f.item_flat if f.size is None else None for f in self.fields]
        flats += [s.flat for s in self.spreads]
        if None not in flats and not self.variants:
            self.flat = sum(f or 0 for f in flats)
        return self


class CostPlan:
    """An operation's cost, ready to be priced with variables and counted on a response.

    `variables` are those `actual` counts with (an argument's weight may depend on
    them); `CostAnalysis.price` hands out the plan bound to the request's variables.
    """

    def __init__(self, selection: Selection, variables: Mapping[str, Any] | None = None) -> None:
        self._selection = selection
        self._variables: Mapping[str, Any] = variables or {}

    def requested(self, variables: Mapping[str, Any]) -> int:
        """The cost before execution, with `variables` coerced for the operation."""
        if self._selection.static is not None:
            return max(MIN_OPERATION_COST, self._selection.static)
        return max(MIN_OPERATION_COST, _requested(self._selection, variables, {}))

    def actual(self, data: Mapping[str, Any] | None) -> int:
        """The cost of what was resolved: the same rules over `data`, with real list lengths."""
        if data is None:
            return MIN_OPERATION_COST
        return max(MIN_OPERATION_COST, _actual(self._selection, data, self._variables))

    def bound(self, variables: Mapping[str, Any]) -> CostPlan:
        """This plan counting `actual` with `variables` (itself when none matter)."""
        if self._selection.static is not None:
            return self
        return CostPlan(self._selection, variables)


def given(value: Any) -> bool:
    return value is not None and value is not Undefined and value != ""


def finish_field(compiled: PlannedField) -> PlannedField:
    selection = compiled.selection
    below = 0 if selection is None else selection.static
    size = compiled.size
    if below is not None and not compiled.extras and (size is None or size.variable is None):
        compiled.static = (1 if size is None else size.constant) * (compiled.weight + below)
    flat = 0 if selection is None else selection.flat
    if flat is not None and not compiled.extras:
        compiled.item_flat = compiled.weight + flat
    return compiled


def _requested(selection: Selection, variables: Mapping[str, Any], memo: dict[int, int]) -> int:
    if selection.static is not None:
        return selection.static
    cost = memo.get(id(selection))
    if cost is not None:
        return cost
    cost = 0
    for compiled in selection.fields:
        if compiled.static is not None:
            cost += compiled.static
            continue
        below = 0 if compiled.selection is None else _requested(compiled.selection, variables, memo)
        count = 1 if compiled.size is None else compiled.size.value(variables)
        cost += count * (compiled.weight_with(variables) + below)
    for spread in selection.spreads:
        cost += _requested(spread, variables, memo)
    if selection.variants:
        cost += max(_requested(v, variables, memo) for v in selection.variants.values())
    memo[id(selection)] = cost
    return cost


def _actual(selection: Selection, data: Mapping[str, Any], variables: Mapping[str, Any]) -> int:
    if selection.flat is not None:
        return selection.flat
    cost = 0
    for compiled in selection.fields:
        value = data.get(compiled.key)
        if value is None:
            continue
        if compiled.size is None:
            cost += _actual_item(compiled, value, variables)
        elif isinstance(value, list):
            if compiled.item_flat is not None:
                cost += compiled.item_flat * sum(1 for item in value if item is not None)
            else:
                cost += sum(
                    _actual_item(compiled, item, variables) for item in value if item is not None
                )
    for spread in selection.spreads:
        cost += _actual(spread, data, variables)
    if selection.variants:
        cost += max(_actual(v, data, variables) for v in selection.variants.values())
    return cost


def _actual_item(compiled: PlannedField, value: Any, variables: Mapping[str, Any]) -> int:
    if compiled.item_flat is not None:
        return compiled.item_flat
    weight = compiled.weight_with(variables)
    if compiled.selection is None or not isinstance(value, Mapping):
        return weight
    return weight + _actual(compiled.selection, value, variables)
