"""Show a fleet (``check``/``host`` over several ``--connect`` URIs): one row per host. No decisions here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

__all__ = ["FleetRow", "print_fleet"]


@dataclass(frozen=True, slots=True, kw_only=True)
class FleetRow:
    uri: str
    reachable: bool
    cells: tuple[str, ...] = ()
    """One value per extra column (empty for an unreachable host)."""
    error: str | None = None
    """Why the host was not read (shown on stderr by the command; kept here for callers)."""
    exit_code: int = 0
    seconds: float = 0.0


def print_fleet(console: Console, *, title: str, columns: Sequence[str], rows: Sequence[FleetRow],
                worst: int) -> None:  # fmt: skip
    # SIMPLE_HEAD: no vertical rules, so a fleet row fits 100 columns (pipes and CI logs are not wide)
    table = Table(title=title, title_justify="left", header_style="bold", pad_edge=False, box=box.SIMPLE_HEAD)
    table.add_column("host", overflow="fold")
    table.add_column("reachable", no_wrap=True)
    for name in columns:
        table.add_column(name, justify="right" if name != "topology" else "left", no_wrap=True)
    table.add_column("exit", justify="right", no_wrap=True)
    table.add_column("time", justify="right", no_wrap=True)
    for row in rows:
        if row.reachable:
            cells = [Text(c) for c in row.cells]
            reach = Text("yes", style="green")
        else:
            # the error line itself goes to stderr (and into --json); the row only says which host
            cells = [Text("-", style="dim") for _ in columns]
            reach = Text("no", style="bold red")
        code = Text(str(row.exit_code), style="bold red" if row.exit_code else "green")
        table.add_row(row.uri, reach, *cells, code, f"{row.seconds:.2f}s")
    console.print(table)
    up = sum(1 for r in rows if r.reachable)
    console.print(f"{len(rows)} host(s): {up} reachable, {len(rows) - up} unreachable; exit {worst}")
