"""The benchmark suite's report, chart and /proc readings on synthetic figures:
nothing here is timed (`make bench` runs the suite itself)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.processes import cpu_ms, descendants, tree_cpu_ms
from bench.suite.__main__ import run_name, write
from bench.suite.chart import write_chart
from bench.suite.figures import AFTER, BARE, BEFORE, CACHED, UNCACHED, Figures, Results
from bench.suite.load import Sample
from bench.suite.report import markdown

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def figures(
    workload: str, mode: str, code: str, *, cpu_ms: float, rps: float, workers: int = 1
) -> Figures:
    sample = Sample(
        requests=int(rps * 10),
        seconds=10.0,
        cpu_ms=cpu_ms * rps * 10,
        p50_ms=2.0,
        p99_ms=8.0,
        error_kinds={},
    )
    statements = None if mode == BARE else (0 if mode == CACHED else 6)
    return Figures.of(
        (workload, mode, code, workers), [sample], statements=statements, peak_rss_mb=120.0
    )


@pytest.fixture
def results() -> Results:
    return Results(
        date="2026-12-01",
        command="python -m bench.suite --baseline a2988d0",
        figures=[
            figures("dashboard", CACHED, BEFORE, cpu_ms=0.5, rps=2000),
            figures("dashboard", CACHED, AFTER, cpu_ms=0.1, rps=9000),
            figures("dashboard", CACHED, AFTER, cpu_ms=0.1, rps=15000, workers=2),
            figures("dashboard", UNCACHED, BEFORE, cpu_ms=27.0, rps=36),
            figures("dashboard", UNCACHED, AFTER, cpu_ms=9.0, rps=108),
            figures("dashboard", UNCACHED, AFTER, cpu_ms=9.5, rps=190, workers=2),
            figures("dashboard", BARE, "", cpu_ms=0.06, rps=16000),
        ],
        notes=["machine: synthetic"],
        flame_graphs={BEFORE: "2026-12-01-dashboard-before.svg"},
    )


def test_the_report_tabulates_before_after_ratios_and_worker_scaling(results: Results) -> None:
    text = markdown(results, chart="2026-12-01-chart.png")
    lines = text.splitlines()
    assert lines[0] == "# Benchmark results, 2026-12-01"
    assert "Command: `python -m bench.suite --baseline a2988d0`" in lines
    uncached = next(line for line in lines if line.startswith("| dashboard, uncached |"))
    # CPU before, after, after/before; req/s before, after, ratio; statements; target.
    assert uncached == (
        "| dashboard, uncached | 27.00 | 9.00 | 0.33\u00d7 | 36 | 108 | 3.00\u00d7 | 6"
        " | \u2264 8 ms: missed by 1.12\u00d7 |"
    )
    hit = next(line for line in lines if line.startswith("| dashboard, cached hit |"))
    assert hit.endswith("| 0 | \u2264 0.12 ms: met |")
    assert "throughput 56% of bare" in text  # 9,000 of 16,000 req/s
    assert "| dashboard, uncached | 108 | 190 | 1.76\u00d7 | 9.00 | 9.50 |" in lines
    assert "![CPU per request and requests/s](2026-12-01-chart.png)" in lines
    assert "- before: [2026-12-01-dashboard-before.svg](2026-12-01-dashboard-before.svg)" in lines
    header = next(line for line in lines if line.startswith("| workload | CPU ms/req before"))
    separator = lines[lines.index(header) + 1]
    assert separator.count("---") == header.count("|") - 1


def test_without_a_baseline_the_report_has_no_before_columns(results: Results) -> None:
    results.figures = [f for f in results.figures if f.code != BEFORE]
    lines = markdown(results, chart=None).splitlines()
    assert (
        "| workload | CPU ms/req after | req/s after | statements/req | target (CPU, after) |"
        in lines
    )
    assert "| dashboard, uncached | 9.00 | 108 | 6 | \u2264 8 ms: missed by 1.12\u00d7 |" in lines
    assert "## Chart" not in lines


def test_the_chart_is_a_png_and_latest_copies_the_report(results: Results, tmp_path: Path) -> None:
    chart = tmp_path / "chart.png"
    write_chart(results, chart)
    assert chart.read_bytes().startswith(PNG_SIGNATURE)
    assert chart.stat().st_size > 10_000
    report = write(markdown(results, chart=chart.name), tmp_path, results.date)
    assert report == tmp_path / "2026-12-01.md"
    latest = (tmp_path / "latest.md").read_text()
    assert "a copy of [2026-12-01.md](2026-12-01.md)" in latest
    assert latest.replace(latest.splitlines()[2] + "\n\n", "", 1) == report.read_text()


def test_the_cpu_of_a_process_tree_counts_its_children() -> None:
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time\nend = time.process_time() + 0.3\n"
            "while time.process_time() < end: pass\ntime.sleep(30)",
        ]
    )
    try:
        deadline = time.monotonic() + 20
        while cpu_ms(child.pid) < 250 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert child.pid in descendants(os.getpid())
        assert tree_cpu_ms(os.getpid()) >= cpu_ms(os.getpid()) + cpu_ms(child.pid) - 10
        assert cpu_ms(child.pid) >= 250
    finally:
        child.kill()
        child.wait()


def test_a_second_run_on_one_day_keeps_the_first_report(tmp_path: Path) -> None:
    assert run_name(tmp_path, "2026-12-02") == "2026-12-02"
    (tmp_path / "2026-12-02.md").write_text("# first\n")
    assert run_name(tmp_path, "2026-12-02") == "2026-12-02-2"
    (tmp_path / "2026-12-02-2.md").write_text("# second\n")
    assert run_name(tmp_path, "2026-12-02") == "2026-12-02-3"
    assert run_name(tmp_path, "2026-12-03") == "2026-12-03"
