"""The code being measured: this checkout, and optionally another git ref beside it.

The baseline is an export of REF (`git archive`) into a temporary directory, run with
this checkout's .venv and PYTHONPATH pointed at it: its packages then shadow the
editable install. An export rather than `git worktree add` leaves nothing in the
repository's metadata if the run is killed. Both trees share the database, so REF
must work on the schema this checkout migrated to.
"""

from __future__ import annotations

import contextlib
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class CodeTree:
    label: str  # "after" (this checkout) or "before" (the baseline)
    root: Path
    description: str  # commit, and for this checkout whether it has local changes

    @property
    def env(self) -> dict[str, str]:
        return {"PYTHONPATH": str(self.root)}


def _git(*args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True, timeout=60
    )
    return done.stdout.strip()


def current() -> CodeTree:
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    commit = _git("rev-parse", "--short", "HEAD")
    return CodeTree("after", ROOT, commit + (" + uncommitted changes" if dirty else ""))


@contextlib.contextmanager
def baseline(ref: str) -> Iterator[CodeTree]:
    """REF's files in a temporary directory, removed afterwards."""
    commit = _git("rev-parse", "--short", f"{ref}^{{commit}}")
    with tempfile.TemporaryDirectory(prefix=f"bench-{commit}-") as directory:
        archive = Path(directory) / "tree.tar"
        _git("archive", "--format=tar", f"--output={archive}", commit)
        with tarfile.open(archive) as tar:
            tar.extractall(directory, filter="data")
        archive.unlink()
        yield CodeTree("before", Path(directory), f"{commit} ({ref})")
