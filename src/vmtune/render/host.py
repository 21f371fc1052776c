"""``vmtune host``: the topology tree (layout and folding rules live in ``render.hostview``).

Labels are built as ``Styled`` lines (``render.hosttext``) and drawn by rich.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TextIO

from rich.console import Console, Group, RenderableType
from rich.text import Text
from rich.tree import Tree

from vmtune.core.topology.model import KIND_BIG, KIND_LITTLE, Host, Node, kind_name
from vmtune.cpuset import CpuSet
from vmtune.render.console import make_console
from vmtune.render.hosttext import Branch, Styled
from vmtune.render.hostview import (
    CacheBox,
    CoreRun,
    NodeBox,
    SocketBox,
    SocketGroup,
    build_view,
    parts_text,
)
from vmtune.units import fmt_kib, page_label

__all__ = ["distance_lines", "emit_host", "header_lines", "host_branches", "print_host"]

# Distances print as a matrix only while it fits a 100-column terminal; bigger hosts have them in --json.
MAX_MATRIX_NODES = 16

S_SOCKET = "bold"
S_NODE = "bold cyan"
S_CACHE = "magenta"
S_DIM = "dim"
S_WARN = "yellow"


_NO_CACHE = {2: "no L2 data"}
"""Header words for a level the source has no groups of (libvirt capabilities carry no L2)."""


def header_lines(host: Host) -> list[Styled]:
    s = host.summary()
    # cpuinfo model names carry padding ("CPU           X7550  @ 2.00GHz")
    model = " ".join((host.model or "").split())
    vendor = None if host.vendor and model.startswith(host.vendor) else host.vendor
    what = " ".join(x for x in (host.arch, vendor, model) if x)
    first = [(host.name, "")]
    if what:
        first.append((f" · {what}", ""))
    tpc = f" ({s.threads_per_core} per core)" if s.threads_per_core > 1 else ""
    parts = [
        _n(s.sockets, "socket"),
        _n(s.numa_nodes, "NUMA node"),
        _n(s.cores, "core"),
        _n(s.threads, "thread") + tpc,
        *(
            f"L{level} ×{n}" if n else _NO_CACHE.get(level, f"no L{level}")
            for level, n in s.cache_groups.items()
        ),
    ]
    mem = host.memory_total_kib
    if mem is None:
        known = [n.mem_total_kib for n in host.nodes if n.mem_total_kib is not None]
        mem = sum(known) if known else None
    if mem:
        parts.append(f"{fmt_kib(mem)} memory")
    lines = [Styled(runs=tuple(first), base="bold"), _line(" · ".join(parts))]
    extra = []
    for label, cpus in (
        ("isolated", host.isolated),
        ("nohz_full", host.nohz_full),
        ("offline", host.offline),
    ):
        if cpus:
            extra.append(f"{label} {cpus}")
    if extra:
        lines.append(_line(" · ".join(extra), S_WARN))
    if host.hybrid:
        big, little = (
            CpuSet().union(*(c.cpus for c in host.cores if c.kind == k)) for k in (KIND_BIG, KIND_LITTLE)
        )
        lines.append(
            _line(f"hybrid · big cores: CPUs {big} · little cores: CPUs {little} (from {host.kind_evidence})")
        )
    return lines


def _line(text: str, base: str = "") -> Styled:
    return Styled(runs=((text, ""),), base=base)


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def host_branches(host: Host) -> list[Branch]:
    """The tree under the (hidden) host root: sockets, or nodes on node-major hosts."""
    top: list[Branch] = []
    for box in build_view(host):
        if isinstance(box, SocketBox):
            branch = Branch(label=_socket_label(box))
            for nb in box.nodes:
                _add_node(branch, nb)
            top.append(branch)
        else:
            top.append(_node_branch(box))
    return top


def _socket_label(sock: SocketBox) -> Styled:
    pkg = "" if sock.package_id is None or sock.package_id == sock.index else f" (package {sock.package_id})"
    rest = f"{pkg} · {_n(sock.cores, 'core')}, {_n(len(sock.cpus), 'CPU')}: {sock.cpus}"
    return Styled(runs=((f"socket {sock.index}", ""), (rest, "")), base=S_SOCKET)


def _socket_group_label(group: SocketGroup) -> Styled:
    n = len(group.sockets)
    runs = [(f"socket {group.sockets}" if n == 1 else f"sockets {group.sockets} ×{n}", "")]
    pkgs = sorted({p for p in group.packages if p is not None})
    if pkgs and pkgs != list(group.sockets):
        shown = ",".join(map(str, pkgs[:4])) + (",..." if len(pkgs) > 4 else "")
        runs.append((f" (package{'s' if len(pkgs) > 1 else ''} {shown})", ""))
    runs.append((f" · {_n(group.cores_each, 'core')}" + (" each" if n > 1 else ""), ""))
    return Styled(runs=tuple(runs), base=S_SOCKET)


def _add_node(parent: Branch, nb: NodeBox) -> None:
    parent.children.append(_node_branch(nb))


def _node_branch(nb: NodeBox) -> Branch:
    branch = Branch(label=_node_label(nb))
    _add_children(branch, nb.children)
    return branch


def _node_label(nb: NodeBox) -> Styled:
    node = nb.node
    runs = [(f"node {node.id}", "")]
    runs.append((f" · {_n(len(node.cpus), 'CPU')}" if node.cpus else " · no CPUs", ""))
    if nb.also_sockets:
        plural = "s" if len(nb.also_sockets) > 1 else ""
        runs.append((f" · also in socket{plural} {nb.also_sockets}", S_WARN))
    runs.append((_memory_text(node), ""))
    return Styled(runs=tuple(runs), base=S_NODE)


def _memory_text(node: Node) -> str:
    if node.mem_total_kib is None:
        return ""
    if node.mem_total_kib == 0:
        return " · no memory"
    text = f" · {fmt_kib(node.mem_total_kib)}"
    if node.mem_free_kib is not None:
        text += f" ({fmt_kib(node.mem_free_kib)} free)"
    pages = [hp for hp in node.hugepages if hp.total > 0]
    if pages:
        text += " · hugepages " + ", ".join(
            f"{page_label(hp.size_kib)} {hp.free}/{hp.total} free" for hp in pages
        )
    return text


def _add_children(parent: Branch, children: Iterable[CacheBox | CoreRun | SocketGroup]) -> None:
    for child in children:
        if isinstance(child, CoreRun):
            parent.add(_run_label(child))
        elif isinstance(child, SocketGroup):
            _add_children(parent.add(_socket_group_label(child)), child.children)
        else:
            _add_children(parent.add(_cache_label(child)), child.children)


def _cache_label(box: CacheBox) -> Styled:
    count = len(box.groups)
    runs = [(f"L{box.level}" + (f" ×{count}" if count > 1 else ""), "")]
    if box.size_kib:
        runs.append((f" · {fmt_kib(box.size_kib)}", ""))
    each = " each" if count > 1 else ""
    runs.append((f" · {_n(box.cores_each, 'core')}{each}", ""))
    if box.spans:
        runs.append((f" · shared with node {box.spans}", S_WARN))
    return Styled(runs=tuple(runs), base=S_CACHE)


def _run_label(run: CoreRun) -> Styled:
    kind = _n(run.threads, "thread") + ("" if len(run.cores) == 1 else " each")
    if run.kind is not None:
        kind += f", {kind_name(run.kind)}"
    if run.capacity is not None:
        kind += f", capacity {run.capacity}"
    return Styled(runs=((f"{run.cores_text()} ({kind}): ", ""), (parts_text(run), "")), base=S_DIM)


def distance_lines(host: Host) -> list[Styled]:
    """The SLIT matrix, when there is more than one node and it fits."""
    nodes = host.nodes
    if len(nodes) < 2 or len(nodes) > MAX_MATRIX_NODES or not any(n.distances for n in nodes):
        return []
    width = max(4, *(len(str(n.id)) + 1 for n in nodes))
    ids = "".join(f"{n.id:>{width}}" for n in nodes)
    lines = [Styled(runs=(("distances".ljust(10), ""), (ids, S_DIM)), base=S_DIM)]
    for a in nodes:
        row = [(f"node {a.id}".ljust(10), "")]
        for b in nodes:
            dist = a.distance_to(b.id)
            row.append((f"{'-' if dist is None else dist:>{width}}", ""))
        lines.append(Styled(runs=tuple(row), base=S_DIM))
    return lines


def print_host(console: Console, host: Host) -> None:
    def grow(tree: Tree, branch: Branch) -> None:
        for child in branch.children:
            grow(tree.add(child.label.text()), child)

    root = Tree(Text(host.name), hide_root=True, guide_style=S_DIM)
    for branch in host_branches(host):
        grow(root.add(branch.label.text()), branch)
    parts: list[RenderableType] = [line.text() for line in header_lines(host)]
    parts.append(root)
    parts.extend(line.text() for line in distance_lines(host))
    console.print(Group(*parts))


def emit_host(stream: TextIO, host: Host) -> None:
    """The tree on ``stream`` (colours only on a terminal)."""
    print_host(make_console(file=stream), host)
