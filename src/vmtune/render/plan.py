"""Show a plan: coloured unified diff, notes/advice, JSON, and the batch summary table. No decisions here.

Every printer takes a rich ``Console`` (``render.console.make_console``: no escape codes on a pipe).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from vmtune.core.plan import Level, Plan
from vmtune.cpuset import CpuSet

__all__ = ["FileRow", "plan_json", "print_diff", "print_notes", "print_summary"]

_DIFF_STYLES = (("+++", "bold"), ("---", "bold"), ("@@", "cyan"), ("+", "green"), ("-", "red"))
_LEVEL_STYLE = {Level.INFO: "", Level.WARNING: "yellow", Level.ERROR: "bold red"}


def print_diff(console: Console, diff: str) -> None:

    for line in diff.splitlines():
        style = next((s for prefix, s in _DIFF_STYLES if line.startswith(prefix)), "")
        console.print(Text(line, style=style), soft_wrap=True)


def print_notes(console: Console, plan: Plan, *, source: str) -> None:

    for note in plan.notes:
        where = f" [{note.xpath}]" if note.xpath else ""
        line = Text(f"{source}: {note.level.value}: {note.topic}: {note.message}{where}")
        line.stylize(_LEVEL_STYLE[note.level])
        console.print(line, soft_wrap=True)
    for item in plan.advice:
        console.print(Text(f"{source}: host advice: {item}", style="dim"), soft_wrap=True)


def _jsonable(value: Any) -> Any:
    if isinstance(value, CpuSet):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    return value


def plan_json(plan: Plan, *, source: str, changed: bool) -> dict[str, Any]:
    """The plan as plain JSON data (CpuSets as list strings, enums as their literals)."""
    return {"file": source, "changed": changed, "plan": _jsonable(plan)}


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class FileRow:
    path: str
    status: str
    """``changed``, ``unchanged`` or ``failed``."""
    reason: str = ""


def print_summary(console: Console, rows: Sequence[FileRow], *, title: str) -> None:

    table = Table(title=title, title_justify="left")
    table.add_column("file", overflow="fold")
    table.add_column("result")
    table.add_column("reason", overflow="fold")
    styles = {"changed": "green", "unchanged": "dim", "failed": "bold red"}
    for row in rows:
        table.add_row(row.path, Text(row.status, style=styles.get(row.status, "")), row.reason)
    counts = {s: sum(1 for r in rows if r.status == s) for s in ("changed", "unchanged", "failed")}
    console.print(table)
    console.print(", ".join(f"{n} {s}" for s, n in counts.items()))
