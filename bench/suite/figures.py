"""What a suite run produces: per (workload, mode, code, workers) the medians of its
runs, and the notes that say what was measured on what."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from bench.suite.load import Sample

UNCACHED = "uncached"
CACHED = "cached hit"
BARE = "bare endpoint"
AFTER = "after"
BEFORE = "before"


@dataclass(frozen=True)
class Figures:
    """Medians over the runs of one configuration (each figure's median on its own)."""

    workload: str
    mode: str  # UNCACHED, CACHED or BARE
    code: str  # AFTER, BEFORE, or "" for the bare endpoint
    workers: int
    rps: float
    cpu_ms: float  # server CPU per request, all its processes
    p50_ms: float
    p99_ms: float
    runs: int
    errors: int = 0  # wrk's socket errors and non-2xx answers, summed over the runs
    non_2xx: int = 0  # of which non-2xx answers
    statements: int | None = None  # per request, counted in-process
    peak_rss_mb: float | None = None  # the largest VmHWM of one process

    @property
    def key(self) -> tuple[str, str, str, int]:
        return (self.workload, self.mode, self.code, self.workers)

    @classmethod
    def of(
        cls,
        key: tuple[str, str, str, int],
        samples: list[Sample],
        *,
        statements: int | None,
        peak_rss_mb: float | None,
    ) -> Figures:
        workload, mode, code, workers = key
        return cls(
            workload=workload,
            mode=mode,
            code=code,
            workers=workers,
            rps=statistics.median(s.rps for s in samples),
            cpu_ms=statistics.median(s.cpu_ms_per_request for s in samples),
            p50_ms=statistics.median(s.p50_ms for s in samples),
            p99_ms=statistics.median(s.p99_ms for s in samples),
            runs=len(samples),
            errors=sum(s.errors for s in samples),
            non_2xx=sum(s.error_kinds.get("status", 0) for s in samples),
            statements=statements,
            peak_rss_mb=peak_rss_mb,
        )


@dataclass
class Results:
    date: str  # YYYY-MM-DD, names the report
    command: str
    figures: list[Figures]
    notes: list[str] = field(default_factory=list)  # machine, code, method
    flame_graphs: dict[str, str] = field(default_factory=dict)  # code label -> SVG file name

    def get(self, workload: str, mode: str, code: str, workers: int = 1) -> Figures | None:
        for figures in self.figures:
            if figures.key == (workload, mode, code, workers):
                return figures
        return None

    @property
    def codes(self) -> list[str]:
        """The code labels measured, BEFORE first."""
        present = {f.code for f in self.figures}
        return [code for code in (BEFORE, AFTER) if code in present]
