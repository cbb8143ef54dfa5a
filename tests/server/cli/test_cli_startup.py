"""The CLI starts light: help imports nothing heavy, `-h` works everywhere, defaults show.

Structural, not timed: what `--help` imports is what makes it slow
(bench/cli_startup.py prints the figure).
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import version

import click

from server.cli.main import main
from tests.server.cli_support import cli, cli_env

HEAVY = ("sqlalchemy", "strawberry", "uvicorn", "graphql", "alembic", "redis", "asyncpg")


def _command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> list[list[str]]:
    paths: list[list[str]] = []
    for name, command in group.commands.items():
        paths.append([*prefix, name])
        if isinstance(command, click.Group):
            paths += _command_paths(command, (*prefix, name))
    return paths


COMMANDS = _command_paths(main)

# Runs `storefront <path> -h` for every path in one interpreter, as the console
# script would, then reports which heavy packages got imported.
PROBE = """
import json, sys
from server.cli.main import main
for path in json.loads(sys.argv[1]):
    try:
        main([*path, "-h"], prog_name="storefront")
    except SystemExit as exit:
        assert exit.code == 0, (path, exit.code)
heavy = sorted({m.split(".")[0] for m in sys.modules} & set(json.loads(sys.argv[2])))
print(json.dumps(heavy), file=sys.stderr)
"""


def test_help_imports_nothing_heavy() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps([[], *COMMANDS]), json.dumps(HEAVY)],
        env=cli_env({}),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(result.stderr.strip().splitlines()[-1]) == []


def test_every_command_takes_dash_h() -> None:
    assert ["cache", "purge"] in COMMANDS
    assert ["user", "set-role"] in COMMANDS
    for path in [[], *COMMANDS]:
        result = cli(*path, "-h", env={})
        assert result.returncode == 0, (path, result.stderr)
        assert result.stdout.startswith("Usage: "), path


def test_version_comes_from_the_package_metadata() -> None:
    result = cli("--version", env={})
    assert result.returncode == 0
    assert result.stdout.strip() == f"storefront, version {version('storefront')}"


def test_help_shows_defaults() -> None:
    assert "[default: small]" in cli("seed", "-h", env={}).stdout
    assert "[default: head]" in cli("migrate", "-h", env={}).stdout
    assert "[default: 1]" in cli("serve", "-h", env={}).stdout
