"""`make bench`: issue 12's workloads against a real server, before and after.

    .venv/bin/python -m bench.prepare    # once: create and seed bench_medium
    .venv/bin/python -m bench.suite [--baseline REF] [--quick] [--no-workers]
        [--rounds 3] [--seconds 10] [--database-url URL] [--redis-url URL]

Writes bench/results/<date>.md (with <date>-chart.png and the flame graphs beside
it) and copies it to bench/results/latest.md. The Redis database given is flushed, and
so is the one numbered below it, which the baseline uses.
"""

from __future__ import annotations

import argparse
import datetime
import shlex
import sys
from pathlib import Path

from bench.common import DEFAULT_DATABASE_URL
from bench.suite.chart import write_chart
from bench.suite.report import markdown
from bench.suite.runner import Options, run_suite

RESULTS = Path(__file__).resolve().parents[1] / "results"


def write(results_markdown: str, directory: Path, date: str) -> Path:
    """The dated report, and latest.md: the same, saying which file it copies (a copy,
    not a link, so that README can link its sections)."""
    report = directory / f"{date}.md"
    report.write_text(results_markdown)
    title, _, rest = results_markdown.partition("\n")
    (directory / "latest.md").write_text(
        f"{title}\n\nThe latest `make bench` results: a copy of [{report.name}]({report.name}).\n"
        + rest
    )
    return report


def run_name(directory: Path, date: str) -> str:
    """The name of this run's files: the date, or `<date>-N` for a later run that day
    (an earlier report is kept, not overwritten)."""
    name, n = date, 1
    while (directory / f"{name}.md").exists():
        n += 1
        name = f"{date}-{n}"
    return name


def options_from(args: argparse.Namespace) -> Options:
    quick = args.quick
    return Options(
        database_url=args.database_url,
        redis_url=args.redis_url,
        baseline=args.baseline,
        rounds=args.rounds or (1 if quick else 3),
        seconds=args.seconds or (2 if quick else 10),
        warmup_seconds=1 if quick else 3,
        connections=args.connections,
        workers_scaling=not args.no_workers,
        flame_seconds=0 if args.no_flame else (3 if quick else 15),
        output_dir=args.output_dir,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", metavar="REF", help="also measure this git ref")
    parser.add_argument("--quick", action="store_true", help="1 round of 2 s runs: a smoke test")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (3; quick 1)")
    parser.add_argument("--seconds", type=int, help="seconds per run (10; quick 2)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--no-workers", action="store_true", help="skip --workers 2")
    parser.add_argument("--no-flame", action="store_true", help="skip the py-spy flame graphs")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--output-dir", type=Path, default=RESULTS)
    args = parser.parse_args()
    args.output_dir.mkdir(parents=True, exist_ok=True)
    date = run_name(args.output_dir, datetime.datetime.now(datetime.UTC).date().isoformat())
    command = shlex.join(["python", "-m", "bench.suite", *sys.argv[1:]])
    results = run_suite(options_from(args), command=command, date=date)
    chart = f"{date}-chart.png"
    write_chart(results, args.output_dir / chart)
    text = markdown(results, chart=chart)
    print(text)
    print(f"written: {write(text, args.output_dir, date)}", file=sys.stderr)


if __name__ == "__main__":
    main()
