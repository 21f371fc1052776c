"""What a NUMA placement is made of, and whether memory fits a node (shared by ``numa`` and ``numaspan``).

``NodeShare``/``Placement``/``Failure`` are the results of :func:`vmtune.core.placement.numa.place`;
the helpers answer the questions every placement rule asks: how far apart two nodes are (ACPI SLIT),
whether a node's ``MemFree`` or free hugepages hold a share, and how memory follows the vCPUs when a guest
spans nodes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from vmtune.core.placement.allocator import DomainPick
from vmtune.core.topology.model import Host, Node
from vmtune.units import fmt_kib_brief

__all__ = [
    "ANY_NODE",
    "Failure",
    "NodeShare",
    "Placement",
    "cell_distances",
    "distance",
    "memory_shortfall",
    "split_memory",
]

ANY_NODE = -1
"""``NodeShare.node`` for ``--numa off``: the pick spans whatever nodes it spans, memory is not bound."""


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeShare:
    node: int
    pick: DomainPick
    memory_kib: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Placement:
    shares: tuple[NodeShare, ...]
    partial: bool
    """The whole-core pass failed: some vCPUs sit on cores other guests half-use (prefer only)."""
    candidates: tuple[int, ...] = ()
    """Nodes that could have held the guest alone (for the explanation)."""
    free_units: tuple[tuple[int, int], ...] = ()
    """(node, usable units) of the pass that succeeded."""
    order: tuple[int, ...] = ()
    """Host CPU per vCPU when it is not the shares' order (kept current pins)."""

    @property
    def cpus(self) -> tuple[int, ...]:
        """Host CPU of vCPU i, for every i."""
        return self.order or tuple(cpu for share in self.shares for cpu in share.pick.cpus)


@dataclass(frozen=True, slots=True, kw_only=True)
class Failure:
    units: tuple[tuple[int, int], ...]
    memory: tuple[tuple[int, str], ...]


def distance(host: Host, a: int, b: int) -> int:
    if a == b:
        return 10
    node = host.node(a)
    dist = node.distance_to(b) if node else None
    # no SLIT (old kernels, s390): treat every remote node alike
    return dist if dist is not None else 20


def cell_distances(host: Host, nodes: Sequence[int]) -> tuple[tuple[tuple[int, int], ...], ...]:
    """Per guest cell bound to ``nodes[i]``: (cell j, the host's SLIT distance between their nodes) for
    every cell, so the guest's kernel sees a cell on the other socket as far as it is (without them QEMU
    tells it 20 for every remote cell). Empty when the host has no SLIT for these nodes (nothing to copy)."""
    known = all(
        (node := host.node(a)) is not None and (a == b or node.distance_to(b) is not None)
        for a in nodes
        for b in nodes
    )
    if len(nodes) < 2 or not known:
        return ()
    return tuple(tuple((j, distance(host, a, b)) for j, b in enumerate(nodes)) for a in nodes)


def memory_shortfall(node: Node, kib: int, hugepage_kib: int | None) -> str | None:
    """Why ``kib`` of guest memory does not fit on ``node`` (None: it fits or the host doesn't say)."""
    if kib <= 0:
        return None
    if hugepage_kib:
        need = -(-kib // hugepage_kib)
        pages = node.hugepages_of(hugepage_kib)
        free = pages.free if pages else 0
        if free < need:
            return f"needs {need} x {fmt_kib_brief(hugepage_kib)} hugepages, {free} available"
        return None
    if node.mem_free_kib is not None and node.mem_free_kib < kib:
        return f"needs {fmt_kib_brief(kib)}, {fmt_kib_brief(node.mem_free_kib)} available"
    return None


def split_memory(total_kib: int, vcpus: Sequence[int], granule_kib: int) -> tuple[int, ...]:
    """Memory per cell proportional to its vCPUs, rounded down to ``granule_kib``; the last takes the rest."""
    whole = sum(vcpus)
    out = [total_kib * v // whole // granule_kib * granule_kib for v in vcpus[:-1]]
    out.append(total_kib - sum(out))
    return tuple(out)
