"""README's configuration table, rendered from the settings' declarations.

Run `.venv/bin/python -m server.cli.settings_doc` to rewrite the table in README.md
(between the `settings:begin` / `settings:end` markers); a test fails while they differ.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from server.setting_fields import Variable
from server.settings import declared

BEGIN = "<!-- settings:begin -->"
END = "<!-- settings:end -->"
README = Path(__file__).resolve().parents[2] / "README.md"
REGENERATE = ".venv/bin/python -m server.cli.settings_doc"


def _shown(value: Any) -> str:
    if value is None:
        return "unset"
    if value == ():
        return "empty"
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if isinstance(value, float):
        return f"`{value:g}`"
    return f"`{value}`"


def _accepts(variable: Variable) -> str:
    bound = f" {variable.bound.accepts}" if variable.bound is not None else ""
    return variable.read.accepts + bound


def settings_table() -> str:
    """The markdown table of every setting: variable, default, what it accepts, meaning."""
    lines = ["| variable | default | accepts | meaning |", "| --- | --- | --- | --- |"]
    for spec, variable in declared():
        default = variable.shown_default or _shown(spec.default)
        cells = (f"`{variable.name}`", default, _accepts(variable), variable.doc)
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def with_table(readme: str, table: str) -> str:
    """`readme` with the text between the markers replaced by `table`."""
    head, begin, rest = readme.partition(BEGIN)
    _, end, tail = rest.partition(END)
    if not begin or not end:
        raise ValueError(f"README.md lacks the {BEGIN} / {END} markers")
    return f"{head}{BEGIN}\n{table}{END}{tail}"


def main() -> None:
    text = README.read_text(encoding="utf-8")
    updated = with_table(text, settings_table())
    if updated != text:
        README.write_text(updated, encoding="utf-8")
        sys.stdout.write(f"{README}: configuration table updated\n")


if __name__ == "__main__":
    main()
