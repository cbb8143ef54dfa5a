"""The multiprocess directory `serve` prepares: fresh per run, removed after, an
operator's own one emptied at start and kept."""

from __future__ import annotations

from pathlib import Path

from server.observability.metrics import MULTIPROC_DIR_VARIABLE
from server.observability.multiprocess import multiprocess_metrics


def test_several_workers_get_a_fresh_directory_removed_after_the_run() -> None:
    env: dict[str, str] = {}
    with multiprocess_metrics(workers=2, env=env) as directory:
        assert directory is not None
        assert env[MULTIPROC_DIR_VARIABLE] == directory
        assert list(Path(directory).iterdir()) == []
        (Path(directory) / "counter_123.db").write_bytes(b"x")

    assert not Path(directory).exists()
    assert MULTIPROC_DIR_VARIABLE not in env


def test_one_worker_needs_none() -> None:
    env: dict[str, str] = {}
    with multiprocess_metrics(workers=1, env=env) as directory:
        assert directory is None
        assert env == {}


def test_an_operator_s_directory_is_emptied_at_start_and_kept(tmp_path: Path) -> None:
    (tmp_path / "counter_99.db").write_bytes(b"an earlier run's figures")
    (tmp_path / "notes.txt").write_text("not ours")
    env = {MULTIPROC_DIR_VARIABLE: str(tmp_path)}
    with multiprocess_metrics(workers=4, env=env) as directory:
        assert directory == str(tmp_path)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]

    assert tmp_path.is_dir()
    assert env[MULTIPROC_DIR_VARIABLE] == str(tmp_path)
