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

Nodes never fold: their memory and hugepages differ and are worth a line each. Sockets nest nodes; but when
every socket sits inside one node and some node holds several sockets (old multi-socket NUMA boxes, POWER
firmware reporting one "socket" per core, a VM with one socket per vCPU), nodes nest sockets instead, and
identical consecutive sockets fold (``sockets 0-31 x32``). A node that spans sockets, or a cache group
that spans nodes (Intel SNC: one L3 per package, two nodes), is shown under each parent with a note
naming the others. CPU-less nodes (PMEM, GPU memory) come last.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, replace

from vmtune.core.topology.model import CACHE_LEVELS, CacheGroup, Core, Host, Node
from vmtune.cpuset import CpuSet

_LEVELS = tuple(reversed(CACHE_LEVELS))
"""Cache levels as the tree nests them: the coarsest (L3) right under a node, finer ones inside it."""

__all__ = [
    "CacheBox",
    "CoreRun",
    "Item",
    "NodeBox",
    "SocketBox",
    "SocketGroup",
    "build_view",
    "parts_text",
    "stride_text",
]

# A folded core line shows the per-group CPU lists only while they stay this short; the tree indents
# 12-16 columns and the "cores ... (2 threads each): " prefix takes ~30 more in a 100-column terminal.
MAX_PARTS_CHARS = 56
MAX_CORES_CHARS = 24


@dataclass(frozen=True, slots=True, kw_only=True)
class CoreRun:
    """One line: cores of one kind; ``parts`` are the CPUs per folded cache group (one when not folded)."""

    cores: CpuSet
    threads: int
    capacity: int | None
    parts: tuple[CpuSet, ...]
    kind: int | None = None
    """``Core.kind`` on hybrid hosts."""

    @property
    def cpus(self) -> CpuSet:
        return CpuSet().union(*self.parts)

    def cores_text(self) -> str:
        """``cores 0-29``, ``core 5``; a scattered index list (odd numbering) becomes ``16 cores``."""
        if len(self.cores) == 1:
            return f"core {self.cores}"
        text = str(self.cores)
        return f"cores {text}" if len(text) <= MAX_CORES_CHARS else f"{len(self.cores)} cores"

    def signature(self) -> tuple[object, ...]:
        return ("run", self.threads, self.capacity, self.kind, len(self.cores))


@dataclass(frozen=True, slots=True, kw_only=True)
class CacheBox:
    """One cache group, or identical consecutive ones folded together."""

    level: int
    groups: CpuSet
    """Indices (``Host.caches``) of the groups shown; a group seen under two folded sockets counts once."""
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
class SocketGroup:
    """Inside a node (node-major hosts): one socket, or ``len(sockets)`` identical ones folded."""

    sockets: CpuSet
    """Dense socket indices."""
    packages: tuple[int | None, ...]
    cores_each: int
    children: tuple[CacheBox | CoreRun, ...]

    def signature(self) -> tuple[object, ...]:
        return ("socket", self.cores_each, tuple(c.signature() for c in self.children))


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeBox:
    node: Node
    cores: int
    also_sockets: CpuSet
    """Other socket indices this node's CPUs sit in (a node spanning sockets: odd firmware)."""
    children: tuple[CacheBox | CoreRun | SocketGroup, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class SocketBox:
    index: int
    package_id: int | None
    cpus: CpuSet
    cores: int
    nodes: tuple[NodeBox, ...]


def build_view(host: Host) -> tuple[SocketBox | NodeBox, ...]:
    """Top-level boxes: sockets holding nodes (the usual shape), or nodes holding sockets when every socket
    sits inside one node and some node holds several (old multi-socket NUMA boxes, POWER with one "socket"
    per core, a VM with one socket per vCPU); then the nodes with no cores (CPU-less memory nodes)."""
    per_group = _cores_per_group(host)
    known = {n.id for n in host.nodes}
    nodes = list(host.nodes)
    # Cores whose node the reader could not place (no node data) still belong on screen.
    for ghost_id in sorted({c.node for c in host.cores if c.node not in known}):
        ghost_cpus = CpuSet().union(*(c.cpus for c in host.cores if c.node == ghost_id))
        nodes.append(Node(id=ghost_id, cpus=ghost_cpus))
    top: list[SocketBox | NodeBox] = []
    placed: set[int] = set()
    if _node_major(host):
        for node in nodes:
            node_cores = [c for c in host.cores if c.node == node.id]
            if not node_cores:
                continue
            placed.add(node.id)
            groups: list[CacheBox | CoreRun | SocketGroup] = []
            for socket in host.sockets:
                cores = [c for c in node_cores if c.socket == socket.index]
                if cores:
                    groups.append(
                        SocketGroup(
                            sockets=CpuSet([socket.index]),
                            packages=(socket.package_id,),
                            cores_each=len(cores),
                            children=_cache_level(host, cores, node, per_group),
                        )
                    )
            box = NodeBox(node=node, cores=len(node_cores), also_sockets=CpuSet(), children=_fold(groups))
            top.append(box)
    else:
        for socket in host.sockets:
            socket_cores = [c for c in host.cores if c.socket == socket.index]
            node_boxes: list[NodeBox] = []
            for node in nodes:
                cores = [c for c in socket_cores if c.node == node.id]
                if not cores:
                    continue
                placed.add(node.id)
                also = CpuSet(c.socket for c in host.cores if c.node == node.id and c.socket != socket.index)
                children = _cache_level(host, cores, node, per_group)
                node_boxes.append(NodeBox(node=node, cores=len(cores), also_sockets=also, children=children))
            top.append(
                SocketBox(
                    index=socket.index,
                    package_id=socket.package_id,
                    cpus=socket.cpus,
                    cores=len(socket_cores),
                    nodes=tuple(node_boxes),
                )
            )
    top.extend(
        NodeBox(node=n, cores=0, also_sockets=CpuSet(), children=()) for n in host.nodes if n.id not in placed
    )
    return tuple(top)


def _node_major(host: Host) -> bool:
    socket_nodes: dict[int, set[int]] = {}
    node_sockets: dict[int, set[int]] = {}
    for core in host.cores:
        socket_nodes.setdefault(core.socket, set()).add(core.node)
        node_sockets.setdefault(core.node, set()).add(core.socket)
    return all(len(n) == 1 for n in socket_nodes.values()) and any(len(s) > 1 for s in node_sockets.values())


def _cores_per_group(host: Host) -> dict[int, int]:
    counts: dict[int, int] = {}
    for core in host.cores:
        for idx in core.caches.values():
            counts[idx] = counts.get(idx, 0) + 1
    return counts


def _group(host: Host, idx: int | None) -> CacheGroup | None:
    if idx is None or not 0 <= idx < len(host.caches):
        return None
    return host.caches[idx]


def _cache_level(
    host: Host,
    cores: Sequence[Core],
    node: Node,
    per_group: dict[int, int],
    *,
    levels: tuple[int, ...] = _LEVELS,
) -> tuple[CacheBox | CoreRun, ...]:
    """Children of a node (the coarsest level) or of a cache group (the levels below): cache boxes and core
    runs, folded."""
    level, finer = levels[0], levels[1:]
    items: list[tuple[int, CacheBox | CoreRun]] = []
    loose: list[Core] = []
    buckets: dict[int, list[Core]] = {}
    for core in cores:
        idx = core.caches.get(level)
        # Below the coarsest level only shared groups show: a private L2 is a property of the core, not a
        # group worth a box.
        if idx is None or (level != _LEVELS[0] and per_group.get(idx, 0) < 2):
            loose.append(core)
        else:
            buckets.setdefault(idx, []).append(core)
    for idx, members in buckets.items():
        group = _group(host, idx)
        inner = _cache_level(host, members, node, per_group, levels=finer) if finer else tuple(_runs(members))
        spans = host.nodes_of(group.cpus) - CpuSet([node.id]) if group is not None else CpuSet()
        box = CacheBox(
            level=level,
            groups=CpuSet([idx]),
            size_kib=group.size_kib if group else None,
            cores_each=per_group.get(idx, len(members)),
            spans=spans,
            children=inner,
        )
        items.append((min(c.index for c in members), box))
    if loose:
        if finer:
            # No data at this level for these cores: their shared finer groups (if any) hang right here.
            for child in _cache_level(host, loose, node, per_group, levels=finer):
                items.append((_first_core(child), child))
        else:
            for run in _runs(loose):
                items.append((run.cores.first(), run))
    items.sort(key=lambda item: item[0])
    # (no SocketGroup goes in, so none comes out; the filter only narrows the type)
    return tuple(x for x in _fold([item for _, item in items]) if not isinstance(x, SocketGroup))


def _first_core(item: CacheBox | CoreRun) -> int:
    if isinstance(item, CoreRun):
        return item.cores.first()
    return min((_first_core(c) for c in item.children), default=0)


def _runs(cores: Sequence[Core]) -> list[CoreRun]:
    """Cores grouped by (threads, capacity, kind), in order of first appearance."""
    by_kind: dict[tuple[int, int | None, int | None], list[Core]] = {}
    for core in cores:
        by_kind.setdefault((len(core.cpus), core.capacity, core.kind), []).append(core)
    return [
        CoreRun(
            cores=CpuSet(c.index for c in members),
            threads=threads,
            capacity=capacity,
            parts=(CpuSet().union(*(c.cpus for c in members)),),
            kind=kind,
        )
        for (threads, capacity, kind), members in by_kind.items()
    ]


Item = CacheBox | CoreRun | SocketGroup


def _fold(items: Sequence[Item]) -> tuple[Item, ...]:
    """Merge consecutive boxes (cache groups, sockets) whose shape matches the first box of the run."""
    out: list[Item] = []
    run_sig: tuple[object, ...] | None = None
    for item in items:
        prev = out[-1] if out else None
        if not isinstance(item, CoreRun) and prev is not None and run_sig == item.signature():
            out[-1] = _merge(prev, item)
        else:
            out.append(item)
            run_sig = None if isinstance(item, CoreRun) else item.signature()
    return tuple(out)


def _merge(a: Item, b: Item) -> Item:
    if isinstance(a, CoreRun) and isinstance(b, CoreRun):
        return replace(a, cores=a.cores | b.cores, parts=a.parts + b.parts)
    if isinstance(a, CacheBox) and isinstance(b, CacheBox):
        children = tuple(_merge_child(x, y) for x, y in zip(a.children, b.children, strict=True))
        return replace(a, groups=a.groups | b.groups, children=children)
    if isinstance(a, SocketGroup) and isinstance(b, SocketGroup):
        children = tuple(_merge_child(x, y) for x, y in zip(a.children, b.children, strict=True))
        return replace(a, sockets=a.sockets | b.sockets, packages=a.packages + b.packages, children=children)
    raise AssertionError("signatures matched but shapes differ")  # pragma: no cover


def _merge_child(a: CacheBox | CoreRun, b: CacheBox | CoreRun) -> CacheBox | CoreRun:
    merged = _merge(a, b)
    assert not isinstance(merged, SocketGroup)
    return merged


def parts_text(run: CoreRun) -> str:
    """The CPU list of a run: per folded group when it fits, else the union; a long list with a regular
    stride (odd firmware numbering) is shortened to ``0,2..62``."""
    if len(run.parts) > 1:
        text = " | ".join(str(p) for p in run.parts)
        if len(text) <= MAX_PARTS_CHARS:
            return text
    return stride_text(run.cpus)


def stride_text(cpus: CpuSet) -> str:
    """Canonical list form, or ``first,second..last`` for a long list with one constant step > 1."""
    text = str(cpus)
    if len(text) <= MAX_PARTS_CHARS or len(cpus) < 3:
        return text
    ids = list(cpus)
    steps = {b - a for a, b in itertools.pairwise(ids)}
    return f"{ids[0]},{ids[1]}..{ids[-1]}" if len(steps) == 1 else text
