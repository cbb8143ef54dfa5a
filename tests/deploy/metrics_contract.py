"""The metrics table of the operations contract, read into names, types and labels.

The same table lives in `../shared/spec/operations.md` (the contract) and in
`deploy/metrics.md` (the repository's copy). Example:

    >>> table = "| `x_total` | counter | `state` (idle/in_use), `loader` (name) | m |"
    >>> parse_metrics(table)["x_total"].labels == {"state": {"idle", "in_use"}, "loader": None}
    True
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COPY = ROOT / "deploy" / "metrics.md"
# Beside the repository, as tests/schema/test_contract.py finds the schema.
CONTRACT = ROOT.parent / "shared" / "spec" / "operations.md"

ROW = re.compile(r"^\|\s*`(?P<name>[a-z_:]+)`\s*\|\s*(?P<type>\w+)\s*\|(?P<labels>[^|]*)\|")
# A label is `name`, optionally followed by a parenthesis; a parenthesis of
# slash-separated words (`(idle/in_use/overflow)`) lists the label's only values.
LABEL = re.compile(r"`(?P<name>[a-z_]+)`(?:\s*\((?P<note>[^()]*)\))?")
VALUES = re.compile(r"^[a-z_]+(?:/[a-z_]+)+$")
HISTOGRAM_SERIES = ("_bucket", "_sum", "_count")


@dataclass(frozen=True)
class Metric:
    """One metric of the contract: its labels map to their allowed values (None: any)."""

    name: str
    type: str
    labels: dict[str, frozenset[str] | None]

    def series_names(self) -> set[str]:
        """The names a scrape holds for it: a histogram's _bucket, _sum and _count."""
        if self.type == "histogram":
            return {self.name + suffix for suffix in HISTOGRAM_SERIES}
        return {self.name}


def parse_metrics(text: str) -> dict[str, Metric]:
    """Every row of a metrics table (`| name | type | labels | meaning |`) in `text`."""
    metrics = {}
    for line in text.splitlines():
        row = ROW.match(line.strip())
        if row is None:
            continue
        labels: dict[str, frozenset[str] | None] = {}
        for label in LABEL.finditer(row["labels"]):
            note = (label["note"] or "").strip()
            labels[label["name"]] = frozenset(note.split("/")) if VALUES.match(note) else None
        metrics[row["name"]] = Metric(row["name"], row["type"], labels)
    return metrics


def metric_of_series(metrics: dict[str, Metric], series: str) -> Metric | None:
    """The contract metric a scraped series name belongs to (`x_bucket` -> histogram `x`)."""
    for metric in metrics.values():
        if series in metric.series_names():
            return metric
    return None
