"""The shape of the ``vmtune host`` tree, before any styling: what is shown and how it folds.

Hierarchy: socket > NUMA node > L3 group > L2 group (only when an L2 is shared by more than one core) >
runs of cores. A 960-CPU host must fit on a screen or two, so repetition folds at two places:

- **Core runs.** Inside one cache group (or node, when there is no cache data) the cores with the same
  thread count and ``cpu_capacity`` become one line: ``cores 0-29 (2 threads each): 0-29,480-509``. Core
  numbers are vmtune's dense core indices (stable, unique host-wide); the CPU list is what you pin to.
  Different kinds (hybrid P/E cores, a core with an offline sibling) get their own line.
- **Identical cache groups.** Consecutive sibling groups of one level with the same size, the same number
  of cores and the same inner shape fold into one box counted ``L3 xN``; its core line keeps the per-group CPU
  lists apart with ``|`` (``0-9,480-489 | 10-19,490-499 | ...``), because which CPUs share a cache is
  the point of showing caches. When those lists would not fit on a line, their union is shown instead.

Sockets and nodes never fold: their memory and hugepages differ and are worth a line each. A node that
spans sockets, or a cache group that spans nodes (Intel SNC: one L3 per package, two nodes), is shown
under each parent with a note naming the others. CPU-less nodes (PMEM, GPU memory) come last.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from vmtune.core.topology import CacheGroup, Core, Host, Node
from vmtune.cpuset import CpuSet

__all__ = [
    "CacheBox",
    "CoreRun",
    "NodeBox",
    "SocketBox",
    "build_view",
    "fmt_kib",
    "parts_text",
]

# A folded core line shows the per-group CPU lists only while they stay this short; the tree indents
# 12-16 columns and the "cores ... (2 threads each): " prefix takes ~30 more in a 100-column terminal.
MAX_PARTS_CHARS = 56


@dataclass(frozen=True, slots=True, kw_only=True)
class CoreRun:
    """One line: cores of one kind; ``parts`` are the CPUs per folded cache group (one when not folded)."""

    cores: CpuSet
    threads: int
    capacity: int | None
    parts: tuple[CpuSet, ...]

    @property
    def cpus(self) -> CpuSet:
        return CpuSet().union(*self.parts)

    def signature(self) -> tuple[object, ...]:
        return ("run", self.threads, self.capacity, len(self.cores))


@dataclass(frozen=True, slots=True, kw_only=True)
class CacheBox:
    """One cache group, or ``count`` identical consecutive ones folded together."""

    level: int
    count: int
    size_kib: int | None
    cores_each: int
    spans: CpuSet
    """Other NUMA node ids this group reaches into (empty when it stays inside the node)."""
    children: tuple[CacheBox | CoreRun, ...]

    def signature(self) -> tuple[object, ...]:
        return (
            "cache",
            self.level,
            self.size_kib,
            self.cores_each,
            self.spans,
            tuple(c.signature() for c in self.children),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeBox:
    node: Node
    cores: int
    also_sockets: CpuSet
    """Other socket indices this node's CPUs sit in (a node spanning sockets: odd firmware)."""
    children: tuple[CacheBox | CoreRun, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class SocketBox:
    index: int
    package_id: int | None
    cpus: CpuSet
    cores: int
    nodes: tuple[NodeBox, ...]


def fmt_kib(kib: int) -> str:
    """``512 KiB``, ``1.25 MiB``, ``14 MiB``, ``95.5 GiB``: at most two decimals, trailing zeros dropped."""
    for unit, scale in (("TiB", 1 << 30), ("GiB", 1 << 20), ("MiB", 1 << 10)):
        if kib >= scale:
            value = f"{kib / scale:.2f}".rstrip("0").rstrip(".")
            return f"{value} {unit}"
    return f"{kib} KiB"


def build_view(host: Host) -> tuple[tuple[SocketBox, ...], tuple[NodeBox, ...]]:
    """Sockets (with their nodes), and the nodes in no socket (CPU-less, or a host without sockets)."""
    cores_per_group = _cores_per_group(host)
    placed: set[int] = set()
    sockets: list[SocketBox] = []
    for socket in host.sockets:
        node_boxes: list[NodeBox] = []
        socket_cores = [c for c in host.cores if c.socket == socket.index]
        for node in host.nodes:
            cores = [c for c in socket_cores if c.node == node.id]
            if not cores:
                continue
            placed.add(node.id)
            also = CpuSet(c.socket for c in host.cores if c.node == node.id and c.socket != socket.index)
            node_boxes.append(
                NodeBox(
                    node=node,
                    cores=len(cores),
                    also_sockets=also,
                    children=_cache_level(host, cores, node, cores_per_group, level=3),
                )
            )
        # Cores whose node the reader could not place (no node data) still belong on screen.
        known = {n.id for n in host.nodes}
        orphans = [c for c in socket_cores if c.node not in known]
        if orphans:
            ghost = Node(id=orphans[0].node, cpus=CpuSet().union(*(c.cpus for c in orphans)))
            node_boxes.append(
                NodeBox(
                    node=ghost,
                    cores=len(orphans),
                    also_sockets=CpuSet(),
                    children=_cache_level(host, orphans, ghost, cores_per_group, level=3),
                )
            )
        sockets.append(
            SocketBox(
                index=socket.index,
                package_id=socket.package_id,
                cpus=socket.cpus,
                cores=len(socket_cores),
                nodes=tuple(node_boxes),
            )
        )
    loose = tuple(
        NodeBox(node=n, cores=0, also_sockets=CpuSet(), children=()) for n in host.nodes if n.id not in placed
    )
    return tuple(sockets), loose


def _cores_per_group(host: Host) -> dict[int, int]:
    counts: dict[int, int] = {}
    for core in host.cores:
        for idx in (core.l2, core.l3):
            if idx is not None:
                counts[idx] = counts.get(idx, 0) + 1
    return counts


def _group(host: Host, idx: int | None) -> CacheGroup | None:
    if idx is None or not 0 <= idx < len(host.caches):
        return None
    return host.caches[idx]


def _cache_level(
    host: Host, cores: Sequence[Core], node: Node, per_group: dict[int, int], *, level: int
) -> tuple[CacheBox | CoreRun, ...]:
    """Children of a node (level 3) or of an L3 group (level 2): cache boxes and core runs, folded."""
    items: list[tuple[int, CacheBox | CoreRun]] = []
    loose: list[Core] = []
    buckets: dict[int, list[Core]] = {}
    for core in cores:
        idx = core.l3 if level == 3 else core.l2
        # Level 2 shows only shared L2s: a private L2 is a property of the core, not a group worth a box.
        if idx is None or (level == 2 and per_group.get(idx, 0) < 2):
            loose.append(core)
        else:
            buckets.setdefault(idx, []).append(core)
    for idx, members in buckets.items():
        group = _group(host, idx)
        inner = _cache_level(host, members, node, per_group, level=2) if level == 3 else tuple(_runs(members))
        spans = host.nodes_of(group.cpus) - CpuSet([node.id]) if group is not None else CpuSet()
        box = CacheBox(
            level=level,
            count=1,
            size_kib=group.size_kib if group else None,
            cores_each=per_group.get(idx, len(members)),
            spans=spans,
            children=inner,
        )
        items.append((min(c.index for c in members), box))
    if loose:
        if level == 3:
            # No L3 data for these cores: their shared L2s (if any) hang directly under the node.
            for child in _cache_level(host, loose, node, per_group, level=2):
                items.append((_first_core(child), child))
        else:
            for run in _runs(loose):
                items.append((run.cores.first(), run))
    items.sort(key=lambda item: item[0])
    return _fold([item for _, item in items])


def _first_core(item: CacheBox | CoreRun) -> int:
    if isinstance(item, CoreRun):
        return item.cores.first()
    return min((_first_core(c) for c in item.children), default=0)


def _runs(cores: Sequence[Core]) -> list[CoreRun]:
    """Cores grouped by (threads, capacity), in order of first appearance."""
    by_kind: dict[tuple[int, int | None], list[Core]] = {}
    for core in cores:
        by_kind.setdefault((len(core.cpus), core.capacity), []).append(core)
    return [
        CoreRun(
            cores=CpuSet(c.index for c in members),
            threads=threads,
            capacity=capacity,
            parts=(CpuSet().union(*(c.cpus for c in members)),),
        )
        for (threads, capacity), members in by_kind.items()
    ]


def _fold(items: list[CacheBox | CoreRun]) -> tuple[CacheBox | CoreRun, ...]:
    out: list[CacheBox | CoreRun] = []
    run_sig: tuple[object, ...] | None = None  # signature of the first box of the run being folded
    for item in items:
        prev = out[-1] if out else None
        if isinstance(item, CacheBox) and isinstance(prev, CacheBox) and run_sig == item.signature():
            out[-1] = _merge_box(prev, item)
        else:
            out.append(item)
            run_sig = item.signature() if isinstance(item, CacheBox) else None
    return tuple(out)


def _merge_box(a: CacheBox, b: CacheBox) -> CacheBox:
    children = tuple(_merge_item(x, y) for x, y in zip(a.children, b.children, strict=True))
    return replace(a, count=a.count + b.count, children=children)


def _merge_item(a: CacheBox | CoreRun, b: CacheBox | CoreRun) -> CacheBox | CoreRun:
    if isinstance(a, CoreRun) and isinstance(b, CoreRun):
        return replace(a, cores=a.cores | b.cores, parts=a.parts + b.parts)
    if isinstance(a, CacheBox) and isinstance(b, CacheBox):
        return _merge_box(a, b)
    raise AssertionError("signatures matched but shapes differ")  # pragma: no cover


def parts_text(run: CoreRun) -> str:
    """The CPU list of a run: per folded group when it fits, else the union."""
    if len(run.parts) > 1:
        text = " | ".join(str(p) for p in run.parts)
        if len(text) <= MAX_PARTS_CHARS:
            return text
    return str(run.cpus)
