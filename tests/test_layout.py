"""The house's shape (issue 11): server/ in wings, each saying what it owns, and the
map in docs/architecture.md naming every one of them."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVER = ROOT / "server"
MAP = ROOT / "docs" / "architecture.md"
MAX_TOP_LEVEL_MODULES = 8


def _wings() -> list[Path]:
    return sorted(p for p in SERVER.iterdir() if (p / "__init__.py").is_file())


def test_server_keeps_at_most_eight_modules_at_its_top_level() -> None:
    modules = sorted(p.name for p in SERVER.glob("*.py"))
    assert len(modules) <= MAX_TOP_LEVEL_MODULES, modules


def test_every_wing_says_what_it_owns() -> None:
    assert len(_wings()) >= 5
    for wing in _wings():
        docstring = ast.get_docstring(ast.parse((wing / "__init__.py").read_text()))
        assert docstring, f"server/{wing.name}/__init__.py has no docstring"


def test_the_architecture_map_names_every_wing_and_top_level_module() -> None:
    text = MAP.read_text()
    for wing in _wings():
        assert f"{wing.name}/" in text, f"docs/architecture.md does not name server/{wing.name}/"
    for module in SERVER.glob("*.py"):
        if module.name != "__init__.py":
            assert module.name in text, f"docs/architecture.md does not name {module.name}"
