"""The markdown report of a suite run: before/after table, latency and memory,
worker scaling, and the ratios the issue asks about."""

from __future__ import annotations

from bench.suite.figures import AFTER, BARE, BEFORE, CACHED, UNCACHED, Figures, Results

# Issue 12's targets: server CPU ms per request of the current code.
CPU_TARGETS_MS = {
    ("dashboard", UNCACHED): 8.0,
    ("catalog", UNCACHED): 5.0,
    ("product page", UNCACHED): 1.5,
    ("customer orders", UNCACHED): 1.5,
    ("dashboard", CACHED): 0.12,
}
HIT_SHARE_OF_BARE_TARGET = 0.5
P99_OVER_P50_TARGET = 3.0


def _row_label(workload: str, mode: str) -> str:
    return f"bare Starlette endpoint ({workload} bytes)" if mode == BARE else f"{workload}, {mode}"


def _number(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


TIMES = "\u00d7"  # the multiplication sign


def _ratio(numerator: float | None, denominator: float | None) -> str:
    if numerator is None or denominator is None or denominator == 0:
        return "—"
    return f"{numerator / denominator:.2f}{TIMES}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _rows(results: Results) -> list[tuple[str, str]]:
    """(workload, mode) in the order measured, once each."""
    seen: dict[tuple[str, str], None] = {}
    for figures in results.figures:
        seen.setdefault((figures.workload, figures.mode), None)
    return list(seen)


def _one_worker(results: Results, workload: str, mode: str, code: str) -> Figures | None:
    """The figures of `code` with one worker; the bare endpoint's stand in the AFTER column."""
    if mode == BARE:
        return results.get(workload, mode, "") if code == AFTER else None
    return results.get(workload, mode, code)


def main_table(results: Results) -> list[str]:
    codes = results.codes
    compare = codes == [BEFORE, AFTER]
    header = ["workload"]
    header += [f"CPU ms/req {code}" for code in codes] + (["after/before"] if compare else [])
    header += [f"req/s {code}" for code in codes] + (["after/before"] if compare else [])
    header += ["statements/req", "target (CPU, after)"]
    rows = []
    for workload, mode in _rows(results):
        found = [_one_worker(results, workload, mode, code) for code in codes]
        cpu = [f.cpu_ms if f else None for f in found]
        rps = [f.rps if f else None for f in found]
        row = [_row_label(workload, mode)]
        row += [_number(v) for v in cpu] + ([_ratio(cpu[1], cpu[0])] if compare else [])
        row += [_number(v, 0) for v in rps] + ([_ratio(rps[1], rps[0])] if compare else [])
        counts = ["—" if f is None or f.statements is None else str(f.statements) for f in found]
        row.append(" → ".join(counts) if len(set(counts)) > 1 else counts[0])
        target = CPU_TARGETS_MS.get((workload, mode))
        after = _one_worker(results, workload, mode, AFTER)
        if target is None or after is None:
            row.append("—")
        else:
            verdict = (
                "met" if after.cpu_ms <= target else f"missed by {_ratio(after.cpu_ms, target)}"
            )
            row.append(f"≤ {target:g} ms: {verdict}")
        rows.append(row)
    return _table(header, rows)


def latency_table(results: Results) -> list[str]:
    header = ["workload", "code", "workers", "p50 ms", "p99 ms", "p99/p50", "peak RSS MB", "errors"]
    rows = []
    for f in results.figures:
        rows.append(
            [
                _row_label(f.workload, f.mode),
                f.code or "—",
                str(f.workers),
                _number(f.p50_ms),
                _number(f.p99_ms),
                _ratio(f.p99_ms, f.p50_ms),
                _number(f.peak_rss_mb, 0),
                f"{f.errors} ({f.non_2xx} non-2xx)" if f.non_2xx else str(f.errors),
            ]
        )
    return _table(header, rows)


def workers_table(results: Results) -> list[str]:
    header = ["workload", "req/s, 1 worker", "req/s, 2 workers", "scaling"]
    header += ["CPU ms/req, 1 worker", "CPU ms/req, 2 workers"]
    rows = []
    for workload, mode in _rows(results):
        one = results.get(workload, mode, AFTER, 1)
        two = results.get(workload, mode, AFTER, 2)
        if one is None or two is None:
            continue
        rows.append(
            [
                _row_label(workload, mode),
                _number(one.rps, 0),
                _number(two.rps, 0),
                _ratio(two.rps, one.rps),
                _number(one.cpu_ms),
                _number(two.cpu_ms),
            ]
        )
    return _table(header, rows) if rows else []


def ratios(results: Results) -> list[str]:
    """One line per ratio the issue names."""
    lines = []
    bare = results.get("dashboard", BARE, "")
    for code in results.codes:
        hit = results.get("dashboard", CACHED, code)
        if hit is not None and bare is not None:
            share = hit.rps / bare.rps
            lines.append(
                f"- dashboard cached hit ({code}) vs bare endpoint: throughput {share:.0%} of bare"
                f" (target ≥ {HIT_SHARE_OF_BARE_TARGET:.0%}), CPU {_ratio(hit.cpu_ms, bare.cpu_ms)}"
                " of bare"
            )
    for f in results.figures:
        if f.code == AFTER and f.workers == 1 and f.p50_ms > 0:
            over = f.p99_ms / f.p50_ms
            if over > P99_OVER_P50_TARGET:
                label = _row_label(f.workload, f.mode)
                lines.append(f"- p99/p50 of {label}: {over:.1f} (target ≤ {P99_OVER_P50_TARGET:g})")
    return lines


def markdown(results: Results, *, chart: str | None) -> str:
    """The whole report; `chart` is the PNG's file name beside it."""
    lines = [f"# Benchmark results, {results.date}", "", f"Command: `{results.command}`", ""]
    lines += [f"- {note}" for note in results.notes]
    lines += ["", "## Server CPU per request and throughput (one worker)", ""]
    lines += main_table(results)
    lines += ["", "## Ratios", "", *(ratios(results) or ["- (none measured)"])]
    lines += ["", "## Latency and memory", "", *latency_table(results)]
    scaling = workers_table(results)
    if scaling:
        lines += ["", "## Workers (`storefront serve --workers N`, current code)", "", *scaling]
    if chart:
        lines += ["", "## Chart", "", f"![CPU per request and requests/s]({chart})"]
    if results.flame_graphs:
        lines += ["", "## Flame graphs (py-spy, dashboard uncached under load)", ""]
        lines += [f"- {code}: [{name}]({name})" for code, name in results.flame_graphs.items()]
    return "\n".join(lines) + "\n"
