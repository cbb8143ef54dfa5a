"""Reading a `/metrics` page back: families by their contract name, sample values by labels."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families


@dataclass
class Scrape:
    families: dict[str, Metric]

    @classmethod
    def parse(cls, text: str) -> Scrape:
        families = {}
        for family in text_string_to_metric_families(text):
            # The parser drops a counter's `_total`; the contract names it with it.
            name = family.name + "_total" if family.type == "counter" else family.name
            families[name] = family
        return cls(families)

    def value(self, series: str, **labels: str) -> float:
        """The sum of the samples named `series` whose labels include `labels` (0: none)."""
        total = 0.0
        for family in self.families.values():
            for sample in family.samples:
                if sample.name == series and labels.items() <= sample.labels.items():
                    total += sample.value
        return total

    def label_values(self, family: str, label: str) -> set[str]:
        return {s.labels[label] for s in self.families[family].samples if label in s.labels}
