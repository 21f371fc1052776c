"""Show a fleet (``check``/``host`` over several ``--connect`` URIs): one row per host. No decisions here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

__all__ = ["FleetRow", "host_label", "host_labels", "print_fleet"]

_HOST_MIN = 12
"""Narrowest host column: below this a host name would fold into pieces too short to read."""


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


def _seconds(seconds: float) -> str:
    return f"{seconds:.2f}s"


def host_label(uri: str) -> str:
    """What the table shows for a URI: its host part (``qemu+ssh://root@hv1.example.com/system`` ->
    ``hv1.example.com``, with ``:port`` when given); a URI without a host (``qemu:///system``) as it is."""
    try:
        parts = urlsplit(uri)
        host, port = parts.hostname, parts.port
    except ValueError:  # a malformed port or IPv6 literal: the URI itself is still the best name
        return uri
    if not host:
        return uri
    return f"[{host}]:{port}" if port and ":" in host else f"{host}:{port}" if port else host


def host_labels(uris: Sequence[str]) -> list[str]:
    """:func:`host_label` of each URI, but the whole URI where two different URIs share a host (two
    drivers or users on one machine must stay apart); the same URI twice keeps its short name."""
    owners: dict[str, set[str]] = {}
    for uri in uris:
        owners.setdefault(host_label(uri), set()).add(uri)
    return [label if len(owners[label]) == 1 else uri for uri, label in ((u, host_label(u)) for u in uris)]


def print_fleet(console: Console, *, title: str, columns: Sequence[str], rows: Sequence[FleetRow],
                worst: int) -> None:  # fmt: skip
    """One row per host, as wide as the console allows (80 columns fit): value columns are as wide as
    their widest value and never wrap, a multi-word header takes one line per word, and the host column
    gets the rest (at least ``_HOST_MIN``); a longer host name folds inside its cell. ``--json`` keeps
    the full URIs."""
    labels = host_labels([r.uri for r in rows])
    headers = ["up", *(name.replace(" ", "\n") for name in columns), "exit", "time"]
    values = [["yes" if r.reachable else "no", *(r.cells or ["-"] * len(columns)), str(r.exit_code),
               _seconds(r.seconds)] for r in rows]  # fmt: skip
    widths = [max([*(len(line) for line in h.split("\n")), *(len(v[i]) for v in values)])
              for i, h in enumerate(headers)]  # fmt: skip
    room = console.width - sum(widths) - 3 * len(widths)  # padding, divider, padding between columns
    host_width = max(_HOST_MIN, min(room, max((len(label) for label in labels), default=4)))
    # no vertical rules and no edge padding: every cell of the 80 columns goes to the values
    table = Table(title=title, title_justify="left", header_style="bold", pad_edge=False, show_edge=False,
                  box=box.SIMPLE_HEAD)  # fmt: skip
    table.add_column("host", overflow="fold", width=host_width)
    for i, header in enumerate(headers):
        left = header in ("up", "topology")
        table.add_column(header, justify="left" if left else "right", no_wrap=True, min_width=widths[i])
    for row, label in zip(rows, labels, strict=True):
        if row.reachable:
            cells = [Text(c) for c in row.cells]
            reach = Text("yes", style="green")
        else:
            # the error line itself goes to stderr (and into --json); the row only says which host
            cells = [Text("-", style="dim") for _ in columns]
            reach = Text("no", style="bold red")
        code = Text(str(row.exit_code), style="bold red" if row.exit_code else "green")
        table.add_row(label, reach, *cells, code, _seconds(row.seconds))
    console.print(table)
    up = sum(1 for r in rows if r.reachable)
    console.print(f"{len(rows)} host(s): {up} reachable, {len(rows) - up} unreachable; exit {worst}")
