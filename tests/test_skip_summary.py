"""`make test` says why it skipped what it skipped (tests/conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# One test on both backends: without TEST_DATABASE_URL its PostgreSQL run is skipped.
ON_BOTH_BACKENDS = "tests/server/cli/test_seed.py::test_unknown_scale_is_refused"


def test_skips_are_counted_by_reason_with_how_to_run_them() -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"TEST_DATABASE_URL", "CI"}}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", ON_BOTH_BACKENDS],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert "1 skipped: TEST_DATABASE_URL is not set: PostgreSQL backend not configured" in lines
    assert any("set TEST_REDIS_URL" in line and "make e2e-deps" in line for line in lines)
    assert "1 passed, 1 skipped" in result.stdout
