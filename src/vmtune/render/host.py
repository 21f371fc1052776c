"""``vmtune host``: the topology tree (layout and folding rules live in ``render.hostview``)."""

from __future__ import annotations

from collections.abc import Iterable

from rich.console import Console, Group, RenderableType
from rich.text import Text
from rich.tree import Tree

from vmtune.core.topology import Host, Node
from vmtune.render.hostview import (
    CacheBox,
    CoreRun,
    NodeBox,
    SocketBox,
    SocketGroup,
    build_view,
    fmt_kib,
    parts_text,
)

__all__ = ["distance_lines", "header_lines", "host_tree", "print_host"]

# Distances print as a matrix only while it fits a 100-column terminal; bigger hosts have them in --json.
MAX_MATRIX_NODES = 16

S_SOCKET = "bold"
S_NODE = "bold cyan"
S_CACHE = "magenta"
S_DIM = "dim"
S_WARN = "yellow"


def header_lines(host: Host) -> list[Text]:
    s = host.summary()
    # cpuinfo model names carry padding ("CPU           X7550  @ 2.00GHz")
    model = " ".join((host.model or "").split())
    vendor = None if host.vendor and model.startswith(host.vendor) else host.vendor
    what = " ".join(x for x in (host.arch, vendor, model) if x)
    first = Text(host.name, style="bold")
    if what:
        first.append(f" · {what}")
    tpc = f" ({s.threads_per_core} per core)" if s.threads_per_core > 1 else ""
    parts = [
        _n(s.sockets, "socket"),
        _n(s.numa_nodes, "NUMA node"),
        _n(s.cores, "core"),
        _n(s.threads, "thread") + tpc,
        f"L2 ×{s.l2_groups}" if s.l2_groups else "no L2 data",
        f"L3 ×{s.l3_groups}" if s.l3_groups else "no L3",
    ]
    mem = host.memory_total_kib
    if mem is None:
        known = [n.mem_total_kib for n in host.nodes if n.mem_total_kib is not None]
        mem = sum(known) if known else None
    if mem:
        parts.append(f"{fmt_kib(mem)} memory")
    lines = [first, Text(" · ".join(parts))]
    extra = []
    for label, cpus in (
        ("isolated", host.isolated),
        ("nohz_full", host.nohz_full),
        ("offline", host.offline),
    ):
        if cpus:
            extra.append(f"{label} {cpus}")
    if extra:
        lines.append(Text(" · ".join(extra), style=S_WARN))
    return lines


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def host_tree(host: Host) -> Tree:
    tree = Tree(Text(host.name), hide_root=True, guide_style=S_DIM)
    for box in build_view(host):
        if isinstance(box, SocketBox):
            branch = tree.add(_socket_label(box))
            for nb in box.nodes:
                _add_node(branch, nb)
        else:
            _add_node(tree, box)
    return tree


def _socket_label(sock: SocketBox) -> Text:
    label = Text(f"socket {sock.index}", style=S_SOCKET)
    pkg = "" if sock.package_id is None or sock.package_id == sock.index else f" (package {sock.package_id})"
    label.append(f"{pkg} · {_n(sock.cores, 'core')}, {_n(len(sock.cpus), 'CPU')}: {sock.cpus}")
    return label


def _socket_group_label(group: SocketGroup) -> Text:
    n = len(group.sockets)
    label = Text(f"socket {group.sockets}" if n == 1 else f"sockets {group.sockets} ×{n}", style=S_SOCKET)
    pkgs = sorted({p for p in group.packages if p is not None})
    if pkgs and pkgs != list(group.sockets):
        shown = ",".join(map(str, pkgs[:4])) + (",..." if len(pkgs) > 4 else "")
        label.append(f" (package{'s' if len(pkgs) > 1 else ''} {shown})")
    label.append(f" · {_n(group.cores_each, 'core')}" + (" each" if n > 1 else ""))
    return label


def _add_node(parent: Tree, nb: NodeBox) -> None:
    branch = parent.add(_node_label(nb))
    _add_children(branch, nb.children)


def _node_label(nb: NodeBox) -> Text:
    node = nb.node
    label = Text(f"node {node.id}", style=S_NODE)
    if node.cpus:
        label.append(f" · {_n(len(node.cpus), 'CPU')}")
    else:
        label.append(" · no CPUs")
    if nb.also_sockets:
        plural = "s" if len(nb.also_sockets) > 1 else ""
        label.append(f" · also in socket{plural} {nb.also_sockets}", style=S_WARN)
    label.append(_memory_text(node))
    return label


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
        text += " · hugepages " + ", ".join(f"{_page(hp.size_kib)} {hp.free}/{hp.total} free" for hp in pages)
    return text


def _page(size_kib: int) -> str:
    for unit, scale in (("G", 1 << 20), ("M", 1 << 10)):
        if size_kib >= scale and size_kib % scale == 0:
            return f"{size_kib // scale}{unit}"
    return f"{size_kib}K"


def _add_children(parent: Tree, children: Iterable[CacheBox | CoreRun | SocketGroup]) -> None:
    for child in children:
        if isinstance(child, CoreRun):
            parent.add(_run_label(child))
        elif isinstance(child, SocketGroup):
            branch = parent.add(_socket_group_label(child))
            _add_children(branch, child.children)
        else:
            branch = parent.add(_cache_label(child))
            _add_children(branch, child.children)


def _cache_label(box: CacheBox) -> Text:
    count = len(box.groups)
    name = f"L{box.level}" + (f" ×{count}" if count > 1 else "")
    label = Text(name, style=S_CACHE)
    if box.size_kib:
        label.append(f" · {fmt_kib(box.size_kib)}")
    each = " each" if count > 1 else ""
    label.append(f" · {_n(box.cores_each, 'core')}{each}")
    if box.spans:
        label.append(f" · shared with node {box.spans}", style=S_WARN)
    return label


def _run_label(run: CoreRun) -> Text:
    kind = _n(run.threads, "thread") + ("" if len(run.cores) == 1 else " each")
    if run.capacity is not None:
        kind += f", capacity {run.capacity}"
    label = Text(f"{run.cores_text()} ({kind}): ", style=S_DIM)
    label.append(parts_text(run))
    return label


def distance_lines(host: Host) -> list[Text]:
    """The SLIT matrix, when there is more than one node and it fits."""
    nodes = host.nodes
    if len(nodes) < 2 or len(nodes) > MAX_MATRIX_NODES or not any(n.distances for n in nodes):
        return []
    width = max(4, *(len(str(n.id)) + 1 for n in nodes))
    head = Text("distances".ljust(10), style=S_DIM)
    head.append("".join(f"{n.id:>{width}}" for n in nodes), style=S_DIM)
    lines = [head]
    for a in nodes:
        line = Text(f"node {a.id}".ljust(10), style=S_DIM)
        for b in nodes:
            dist = a.distance_to(b.id)
            line.append(f"{'-' if dist is None else dist:>{width}}")
        lines.append(line)
    return lines


def print_host(console: Console, host: Host) -> None:
    parts: list[RenderableType] = [*header_lines(host), host_tree(host)]
    parts.extend(distance_lines(host))
    console.print(Group(*parts))
