"""``vmtune host --map``: every CPU as one cell, coloured (and lettered) by owner.

Layout: one block per NUMA node; one *column per physical core* and one *row per SMT thread*, so the
siblings of a core stand on top of each other and a core split between two domains is visible at a
glance (and marked ``^`` underneath, for terminals without colour). Columns are gapped at cache-group
boundaries (L3, else shared L2), and every 8 cores inside groups larger than 16. Each row is labelled
with the CPUs it shows (``0-29``; ``0,2..58`` for a regular stride; ``0..61`` otherwise).

Every cell carries a glyph as well as a colour, so the map reads the same with ``NO_COLOR`` or in a
pipe: tenants are letters ``A``-``Z``, ``a``-``z`` in name order (then ``+``), ``·`` free, ``#`` reserved,
``~`` isolated, ``x`` offline, ``!`` pinned by several domains.
"""

from __future__ import annotations

import itertools
import re
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TextIO

from rich.console import Console

from vmtune.core.guest import GuestSpec
from vmtune.core.ledger.ownership import (
    TENANT_JOIN,
    Owner,
    SharedCore,
    clashes,
    cpu_owners,
    shared_cores,
    unknown_pins,
)
from vmtune.core.ledger.tenant import held_cpus, is_shared
from vmtune.core.topology.model import CACHE_LEVELS, Core, Host
from vmtune.cpuset import CpuSet
from vmtune.render.console import make_console
from vmtune.render.hosttext import Styled

__all__ = ["MapStyle", "emit_map", "map_lines", "map_styles", "natural_key", "print_map", "row_label"]

# Cores per gap-separated group when cache groups are large (or absent): 8 is easy to count.
GROUP = 8
MAX_CELLS = 72
MAX_SHARED_LISTED = 8

_LETTERS = string.ascii_uppercase + string.ascii_lowercase
_PALETTE = (
    "black on green",
    "black on cyan",
    "black on magenta",
    "black on yellow",
    "white on blue",
    "black on bright_green",
    "black on bright_cyan",
    "black on bright_magenta",
    "white on dark_orange3",
    "white on purple4",
    "black on light_sky_blue1",
    "black on khaki1",
)
_SPECIAL = {
    Owner.FREE: ("·", "dim", "free"),
    Owner.RESERVED: ("#", "bold yellow", "reserved for the host (housekeeping, --reserve)"),
    Owner.ISOLATED: ("~", "bold blue", "isolated (isolcpus), not used by a domain"),
    Owner.OFFLINE: ("x", "red", "offline"),
}
_MULTI = ("!", "bold white on red", "pinned by several domains")
_POOL = ("~", "bold black on cyan", "time-shared by several --cpu-policy shared domains")


@dataclass(frozen=True, slots=True, kw_only=True)
class MapStyle:
    glyph: str
    style: str
    label: str


def map_styles(tenant_names: Sequence[str]) -> dict[str, MapStyle]:
    """Glyph and colour per owner string: the four ``Owner`` values, then tenants in name order."""
    styles = {str(owner): MapStyle(glyph=g, style=s, label=lbl) for owner, (g, s, lbl) in _SPECIAL.items()}
    for i, name in enumerate(sorted(set(tenant_names), key=natural_key)):
        glyph = _LETTERS[i] if i < len(_LETTERS) else "+"
        styles[name] = MapStyle(glyph=glyph, style=_PALETTE[i % len(_PALETTE)], label=name)
    return styles


def natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """``web2`` before ``web10``: digit runs compare as numbers."""
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", name) if part)


def row_label(cpus: Sequence[int]) -> str:
    """``0-29`` when contiguous, ``0,2..58`` for a regular stride, ``0..61`` otherwise."""
    if not cpus:
        return ""
    if len(cpus) <= 2:
        return ",".join(map(str, cpus))
    steps = {b - a for a, b in itertools.pairwise(cpus)}
    if steps == {1}:
        return f"{cpus[0]}-{cpus[-1]}"
    if len(steps) == 1:
        return f"{cpus[0]},{cpus[1]}..{cpus[-1]}"
    return f"{cpus[0]}..{cpus[-1]}"


def print_map(
    console: Console, host: Host, tenants: Sequence[GuestSpec], reserved: CpuSet | None = None
) -> None:
    for line, wraps in map_lines(host, tenants, reserved):
        if wraps:
            console.print(line.text())
        else:  # a grid row is never wrapped or cropped: a narrow terminal scrolls rather than garbles
            console.print(line.text(), no_wrap=True, overflow="ignore", crop=False)


def emit_map(
    stream: TextIO, host: Host, tenants: Sequence[GuestSpec], reserved: CpuSet | None = None
) -> None:
    """The map on ``stream`` (colours only on a terminal)."""
    print_map(make_console(file=stream), host, tenants, reserved)


def map_lines(
    host: Host, tenants: Sequence[GuestSpec], reserved: CpuSet | None = None
) -> list[tuple[Styled, bool]]:
    """The map as (line, rich wraps it at the console width) pairs."""
    owners = cpu_owners(host, tenants, reserved)
    names = [t.name for t in tenants]
    styles = map_styles(names)
    pooled = {t.name for t in tenants if is_shared(t)}
    for owner in set(owners.values()):
        parts = owner.split(TENANT_JOIN)
        if owner not in styles and len(parts) > 1 and all(p in pooled for p in parts):
            # shared-policy guests on one pool is the design, not a clash: its own glyph, no alarm
            styles[owner] = MapStyle(glyph=_POOL[0], style=_POOL[1], label=_POOL[2])
    shared = shared_cores(host, tenants)
    shared_idx = {s.core for s in shared}

    blocks = _blocks(host, owners, styles, shared_idx)
    label_w = max((len(lbl) for _, rows in blocks for lbl, _ in rows), default=8)
    label_w = max(label_w, 7)
    out = [
        (_styled(f"CPU map of {host.name}", "bold"), True),
        (_styled(f"columns are cores, rows are their SMT threads; {_gap_hint(host)}", "dim"), True),
    ]
    for title, rows in blocks:
        out.append((_styled(title, "bold cyan"), True))
        for label, cells in rows:
            out.append((Styled(runs=(("  " + label.rjust(label_w) + "  ", ""), *cells), base="dim"), False))
    out.append((_legend(owners, styles, tenants), True))
    out.extend((_styled(line, "bold red"), True) for line in _problems(host, tenants, shared))
    return out


def _styled(text: str, style: str) -> Styled:
    return Styled(runs=((text, ""),), base=style)


Runs = tuple[tuple[str, str], ...]


def _blocks(
    host: Host, owners: Mapping[int, str], styles: Mapping[str, MapStyle], shared_idx: set[int]
) -> list[tuple[str, list[tuple[str, Runs]]]]:
    blocks: list[tuple[str, list[tuple[str, Runs]]]] = []
    gap = _gap_key(host)
    node_ids = [n.id for n in host.nodes]
    by_node: dict[int, list[Core]] = {}
    for core in host.cores:
        by_node.setdefault(core.node, []).append(core)
    offline_by_node: dict[int, list[int]] = {}
    for cpu in host.cpus:
        if not cpu.online:
            key = cpu.node if cpu.node in node_ids else -1
            offline_by_node.setdefault(key, []).append(cpu.id)
    order = [n for n in node_ids if n in by_node or n in offline_by_node]
    order += [n for n in by_node if n not in node_ids]
    for node_id in order:
        cores = sorted(by_node.get(node_id, []), key=lambda c: c.index)
        rows: list[tuple[str, Runs]] = []
        for chunk in _chunks(cores, gap):
            rows.extend(_core_rows(chunk, owners, styles, shared_idx))
        rows.extend(_offline_rows(offline_by_node.get(node_id, []), owners, styles))
        cpus = CpuSet().union(*(c.cpus for c in cores))
        blocks.append((f"node {node_id} · {len(cores)} cores · CPUs {cpus or '-'}", rows))
    if -1 in offline_by_node:
        blocks.append(("offline, no node", _offline_rows(offline_by_node[-1], owners, styles)))
    return blocks


def _offline_rows(
    cpus: Sequence[int], owners: Mapping[int, str], styles: Mapping[str, MapStyle]
) -> list[tuple[str, Runs]]:
    """Offline CPUs belong to no core: one cell each, MAX_CELLS to a row."""
    return [
        (row_label(chunk), _cells(chunk, owners, styles))
        for chunk in (cpus[i : i + MAX_CELLS] for i in range(0, len(cpus), MAX_CELLS))
    ]


def _gap_hint(host: Host) -> str:
    key = _gap_key(host)
    kinds = sorted({k[0] for k in map(key, host.cores) if k is not None}, reverse=True)
    if not kinds:
        return f"a gap every {GROUP} cores"
    return "a gap starts a new " + " or ".join(kinds) + " group"


def _gap_key(host: Host) -> Callable[[Core], tuple[str, int] | None]:
    """The cache group a core's column is gapped by: the smallest one it shares with other cores (its L2
    when shared: E-core clusters, Phytium's 4-core L2; else its L3, the coarsest level), else none."""
    *finer, coarsest = CACHE_LEVELS
    members: dict[int, int] = {}
    for core in host.cores:
        for idx in core.caches.values():
            members[idx] = members.get(idx, 0) + 1

    def key(core: Core) -> tuple[str, int] | None:
        for level in finer:
            idx = core.caches.get(level)
            if idx is not None and members[idx] > 1:
                return (f"shared L{level}", idx)
        idx = core.caches.get(coarsest)
        return None if idx is None else (f"L{coarsest}", idx)

    return key


def _chunks(cores: Sequence[Core], key: Callable[[Core], tuple[str, int] | None]) -> list[list[list[Core]]]:
    """Lines of gap-separated groups: break where the cache group changes, and every GROUP cores inside
    groups bigger than 2*GROUP (or without cache data); at most ~72 cells per line to fit 100 columns."""
    sizes: dict[tuple[str, int] | None, int] = {}
    for core in cores:
        sizes[key(core)] = sizes.get(key(core), 0) + 1
    groups: list[list[Core]] = []
    current: object = object()
    for core in cores:
        k = key(core)
        big = k is None or sizes[k] > 2 * GROUP
        if not groups or k != current or (big and len(groups[-1]) >= GROUP):
            groups.append([])
            current = k
        groups[-1].append(core)
    lines: list[list[list[Core]]] = [[]]
    for group in groups:
        width = sum(len(g) + 1 for g in lines[-1])
        if lines[-1] and width + len(group) > MAX_CELLS:
            lines.append([])
        lines[-1].append(group)
    return [line for line in lines if line]


class _Row:
    """A grid row built as runs of one style: a 960-CPU map is then a few hundred spans for rich to
    render instead of one per cell."""

    __slots__ = ("glyphs", "runs", "style")

    def __init__(self) -> None:
        self.runs: list[tuple[str, str]] = []
        self.glyphs: list[str] = []
        self.style = ""

    def add(self, glyph: str, style: str) -> None:
        if style != self.style:
            self._flush()
            self.style = style
        self.glyphs.append(glyph)

    def _flush(self) -> None:
        if self.glyphs:
            self.runs.append(("".join(self.glyphs), self.style))
            self.glyphs = []

    def text(self) -> Runs:
        """The runs without trailing whitespace (``Text.rstrip``)."""
        self._flush()
        runs = list(self.runs)
        while runs:
            chunk, style = runs[-1]
            kept = chunk.rstrip()
            if kept:
                runs[-1] = (kept, style)
                break
            runs.pop()
        return tuple(runs)


def _core_rows(
    line: list[list[Core]], owners: Mapping[int, str], styles: Mapping[str, MapStyle], shared_idx: set[int]
) -> list[tuple[str, Runs]]:
    threads = max(len(c.cpus) for g in line for c in g)
    members = [[(list(core.cpus), core.index in shared_idx) for core in group] for group in line]
    rows: list[tuple[str, Runs]] = []
    for rank in range(threads):
        row = _Row()
        shown: list[int] = []
        for gi, group in enumerate(members):
            if gi:
                row.add(" ", "")
            for cpus, shared in group:
                if rank < len(cpus):
                    shown.append(cpus[rank])
                    row.add(*_cell(cpus[rank], owners, styles, shared))
                else:
                    row.add(" ", "")
        rows.append((row_label(shown), row.text()))
    if any(c.index in shared_idx for g in line for c in g):
        marks = " ".join("".join("^" if c.index in shared_idx else " " for c in g) for g in line)
        rows.append(("shared", ((marks.rstrip(), "bold red"),)))
    return rows


def _cells(cpus: Sequence[int], owners: Mapping[int, str], styles: Mapping[str, MapStyle]) -> Runs:
    row = _Row()
    for cpu in cpus:
        row.add(*_cell(cpu, owners, styles, False))
    return row.text()


def _cell(
    cpu: int, owners: Mapping[int, str], styles: Mapping[str, MapStyle], shared: bool
) -> tuple[str, str]:
    """(glyph, style) of one CPU."""
    owner = owners.get(cpu, Owner.FREE)
    style = styles.get(owner)
    if style is None:  # several tenants: "a+b"
        glyph, colour = _MULTI[0], _MULTI[1]
    else:
        glyph, colour = style.glyph, style.style
    return glyph, colour + (" underline" if shared else "")


def _legend(
    owners: Mapping[int, str], styles: Mapping[str, MapStyle], tenants: Sequence[GuestSpec]
) -> Styled:
    counts: dict[str, list[int]] = {}
    for cpu, owner in owners.items():
        counts.setdefault(owner, []).append(cpu)
    runs = [("legend:", "")]
    for owner in Owner:
        cpus = counts.get(owner, [])
        if not cpus and owner is not Owner.FREE:
            continue
        st = styles[owner]
        runs += [("\n  ", ""), (st.glyph, st.style), (f" {st.label}: {_cpus(len(cpus))}", "")]
    by_name = {t.name: t for t in tenants}
    for name in sorted(by_name, key=natural_key):
        st = styles[name]
        mine = CpuSet(c for c, o in owners.items() if name in o.split(TENANT_JOIN))
        held = held_cpus(by_name[name])
        what = f"{_cpus(len(mine))}: {mine}" if held.cpus else "floating (no pinned CPUs)"
        if held.cpus and held.shared:
            what += f" (shared pool, {by_name[name].vcpus} vCPUs)"
        runs += [("\n  ", ""), (st.glyph, st.style), (f" {name}: {what}", "")]
    pools = [o for o in counts if TENANT_JOIN in o and styles.get(o, None) is not None]
    if pools:
        listed = "; ".join(f"{o} on {CpuSet(counts[o])}" for o in sorted(pools))
        runs += [("\n  ", ""), (_POOL[0], _POOL[1]), (f" {_POOL[2]}: {listed}", "")]
    multi = [o for o in counts if TENANT_JOIN in o and o not in styles]
    if multi:
        listed = "; ".join(f"{o} on {CpuSet(counts[o])}" for o in sorted(multi))
        runs += [("\n  ", ""), (_MULTI[0], _MULTI[1]), (f" {_MULTI[2]}: {listed}", "")]
    return Styled(runs=tuple(runs), base="bold")


def _cpus(n: int) -> str:
    return f"{n} CPU" + ("" if n == 1 else "s")


def _problems(host: Host, tenants: Sequence[GuestSpec], cores: Sequence[SharedCore]) -> list[str]:
    lines: list[str] = []
    if cores:
        listed = ", ".join(f"{s.cpus} ({'+'.join(s.tenants)})" for s in cores[:MAX_SHARED_LISTED])
        more = f" and {len(cores) - MAX_SHARED_LISTED} more" if len(cores) > MAX_SHARED_LISTED else ""
        lines.append(f"^ shared cores, SMT siblings in different domains: {listed}{more}")
    for clash in clashes(host, tenants)[:MAX_SHARED_LISTED]:
        lines.append(f"! CPU {clash.cpu} is pinned by {' and '.join(clash.tenants)}")
    for name, cpus in unknown_pins(host, tenants).items():
        lines.append(f"x {name} pins offline or missing CPUs {cpus}")
    return lines
