"""The report's chart: server CPU per request and requests/s per workload, one bar
per code (and worker count) measured, on log scales (they span three decades)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: files only

import matplotlib.pyplot as plt

from bench.suite.figures import BARE, Results


def _series(results: Results) -> list[tuple[str, int]]:
    """(code, workers) of each bar, in a stable order."""
    found = {(f.code, f.workers) for f in results.figures if f.mode != BARE}
    return sorted(found, key=lambda s: (s[1], s[0] != "before"))


def write_chart(results: Results, path: Path) -> None:
    rows: dict[tuple[str, str], None] = {}
    for f in results.figures:
        rows.setdefault((f.workload, f.mode), None)
    keys = list(rows)
    series = _series(results)
    height = 0.8 / max(len(series), 1)
    figure, axes = plt.subplots(1, 2, figsize=(13, 0.55 * len(keys) + 2), sharey=True)
    for metric, axis, title in (
        ("cpu_ms", axes[0], "server CPU ms per request (lower is better)"),
        ("rps", axes[1], "requests/s, 16 connections (higher is better)"),
    ):
        for index, (code, workers) in enumerate(series):
            found = [(row, results.get(w, m, code, workers)) for row, (w, m) in enumerate(keys)]
            bars = [(row + index * height, getattr(f, metric)) for row, f in found if f]
            name = code + (f", {workers} workers" if workers > 1 else "")
            axis.barh([y for y, _ in bars], [v for _, v in bars], height=height, label=name)
        found = [(row, results.get(w, m, "")) for row, (w, m) in enumerate(keys) if m == BARE]
        bare = [(row, f) for row, f in found if f is not None]
        axis.barh(
            [row for row, _ in bare],
            [getattr(f, metric) for _, f in bare],
            height=height,
            color="grey",
            label="bare endpoint",
        )
        axis.set_xscale("log")
        axis.set_title(title, fontsize=10)
        axis.grid(axis="x", which="both", alpha=0.3)
    labels = [f"bare endpoint ({w} bytes)" if m == BARE else f"{w}, {m}" for w, m in keys]
    axes[0].set_yticks([row + 0.4 - height / 2 for row in range(len(keys))], labels)
    axes[0].invert_yaxis()
    axes[1].legend(loc="upper right", fontsize=8)
    figure.suptitle(f"Storefront benchmark, {results.date}")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
