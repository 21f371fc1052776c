"""Write the Ansible collection's knob table and the `tune` module's knob options from vmtune's intent.

Every tuning knob is declared once, in ``vmtune.core.intent.model.KNOBS``; the collection must not keep a
second hand-written list. This script derives, per knob, the module option (the flag's name in snake_case),
its Ansible type and choices (from the ``Intent`` field's type: a StrEnum gives choices, a tuple of them a
list, a switch a bool) and its help, and writes them into ``plugins/module_utils/knobs.py`` and the
``DOCUMENTATION`` of ``plugins/modules/tune.py``. ``tests/ansible/test_knobs.py`` fails when either file
differs from what this script would write, so a knob added to the model cannot be missing here.

Run from the repository root: ``PYTHONPATH=src python ansible/gen_knobs.py`` (``--check`` only compares).
"""

from __future__ import annotations

import sys
import types
import typing
from enum import StrEnum
from pathlib import Path
from typing import Any

from vmtune.core.intent.knob import Knob
from vmtune.core.intent.model import KNOBS, Intent

__all__ = ["COLLECTION", "DOC_BEGIN", "DOC_END", "knob_rows", "render_docs", "render_table", "updated"]

COLLECTION = Path(__file__).resolve().parent / "ansible_collections" / "vmtune" / "libvirt"
TABLE = COLLECTION / "plugins" / "module_utils" / "knobs.py"
MODULE = COLLECTION / "plugins" / "modules" / "tune.py"
DOC_BEGIN = "  # BEGIN knobs: written by ansible/gen_knobs.py from vmtune.core.intent.model.KNOBS"
DOC_END = "  # END knobs"


def _choices(hint: Any) -> tuple[str, list[str] | None, str | None]:
    """(Ansible type, choices, list elements) of an Intent field's type."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and len(args) == 1:
        return _choices(args[0])
    if (
        typing.get_origin(hint) is tuple
        and args
        and isinstance(args[0], type)
        and issubclass(args[0], StrEnum)
    ):
        return "list", [m.value for m in args[0]], "str"
    if isinstance(hint, type) and issubclass(hint, StrEnum):
        return "str", [m.value for m in hint], None
    if hint is bool:
        return "bool", None, None
    if hint is int:
        return "int", None, None
    return "str", None, None


def knob_rows(knobs: tuple[Knob[Any], ...] = KNOBS) -> list[dict[str, Any]]:
    """One row per knob: the module option, its CLI flag, Ansible type, choices and help."""
    hints = typing.get_type_hints(Intent)
    rows = []
    for k in knobs:
        kind, choices, elements = _choices(hints.get(k.name, str))
        if kind == "int" and k.metavar != "N":
            kind = "str"  # a size such as 2G is an int in the model but text on the command line
        row: dict[str, Any] = {"option": k.attr.replace("-", "_"), "flag": k.flag, "type": kind}
        if choices is not None:
            row["choices"] = choices
        if elements is not None:
            row["elements"] = elements
        if k.negatable:
            row["no_flag"] = k.no_flag  # false is passed on: it overrides the profile's default
        row["help"] = k.help
        rows.append(row)
    return rows


def render_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        '"""The tuning knobs of vmtune (option, CLI flag, type, choices, help), one row per knob.',
        "",
        "Written by ansible/gen_knobs.py from vmtune.core.intent.model.KNOBS; do not edit by hand",
        '(tests/ansible/test_knobs.py fails when this table and the model differ)."""',
        "",
        "from __future__ import absolute_import, division, print_function",
        "",
        "__metaclass__ = type",
        "",
        "KNOBS = (",
        *(f"    {row!r}," for row in rows),
        ")",
    ]
    return "\n".join(lines) + "\n"


def render_docs(rows: list[dict[str, Any]]) -> str:
    """The knob options of tune.py's DOCUMENTATION (YAML, indented as its ``options:`` entries)."""
    out = [DOC_BEGIN]
    for row in rows:
        out.append(f"  {row['option']}:")
        out.append(f"    description: {_yaml_text(row['help'] + ' (vmtune ' + row['flag'] + ')')}")
        out.append(f"    type: {row['type']}")
        if "elements" in row:
            out.append(f"    elements: {row['elements']}")
        if "choices" in row:
            out.append(f"    choices: [{', '.join(_yaml_text(c) for c in row['choices'])}]")
    out.append(DOC_END)
    return "\n".join(out)


def _yaml_text(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def updated(module_text: str, rows: list[dict[str, Any]]) -> str:
    """``module_text`` with the lines from DOC_BEGIN to DOC_END replaced by the knobs' options."""
    start = module_text.index(DOC_BEGIN)
    end = module_text.index(DOC_END, start) + len(DOC_END)
    return module_text[:start] + render_docs(rows) + module_text[end:]


def main(argv: list[str]) -> int:
    rows = knob_rows()
    wanted = {TABLE: render_table(rows), MODULE: updated(MODULE.read_text(), rows)}
    stale = [path for path, text in wanted.items() if not path.exists() or path.read_text() != text]
    if "--check" in argv:
        for path in stale:
            print(
                f"{path}: differs from vmtune.core.intent.model.KNOBS; run ansible/gen_knobs.py",
                file=sys.stderr,
            )
        return 1 if stale else 0
    for path in stale:
        path.write_text(wanted[path])
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
