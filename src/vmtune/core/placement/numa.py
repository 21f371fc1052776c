"""Choose the NUMA node(s) a guest lives on, split wide guests across nodes, and check memory fits.

Rules, applied after the whole-core rule of the thread policy:

* a guest that fits one node gets one node: among the nodes that hold its vCPUs and its memory, the one
  whose pick spans the fewest cache groups with no needless share (``allocator``, ``sharing``: weighed
  against that node's own idle groups, so a full node's busy group beats breaking a fresh node), then by
  ``--numa-fit``: ``pack`` (the default) the *best fit*, the node with the least free room that still
  holds the guest - so nodes fill one after the other and wide guests later find whole nodes free, as
  kubelet's packed policy and Nova's default packing do - ``spread`` the node with the most (balanced
  load, for memory-bandwidth-bound guests); then the rest of the cache fit, ties to the lowest node id;
  a passthrough PCI device's node comes first when it fits (its DMA and interrupts stay local);
* a guest too big for one node (or ``--numa N``) spans the fewest nodes (N), closest by the ACPI SLIT
  distance matrix; its vCPUs are split as evenly as those nodes allow, in whole cores, and its memory
  follows the vCPUs proportionally;
* memory must fit ``MemFree`` of each node, and with hugepages the node's free pages of that size: a node
  that can't hold its share is skipped, and when nothing fits the error says needed vs. free per node.

This module is the entry (:func:`place`) and the one-node rule; the result types and memory/distance
helpers live in ``numafit`` and the multi-node split in ``numaspan`` (re-exported here, import from here).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from vmtune.core.intent.model import CacheFit, Fit, Numa, ThreadPolicy
from vmtune.core.ledger.pool import Tenant
from vmtune.core.placement.allocator import CoreView, core_views, grouping_levels, idle_rooms
from vmtune.core.placement.numafit import (
    ANY_NODE,
    Failure,
    NodeShare,
    Placement,
    cell_distances,
    distance,
    memory_shortfall,
    split_memory,
)
from vmtune.core.placement.numaspan import Ask, split_wide
from vmtune.core.topology.model import Core, Host
from vmtune.cpuset import CpuSet

__all__ = [
    "ANY_NODE",
    "Failure",
    "NodeShare",
    "Placement",
    "cell_distances",
    "distance",
    "memory_shortfall",
    "place",
    "split_memory",
]


def place(
    *,
    host: Host,
    free: CpuSet,
    cores: Sequence[Core],
    vcpus: int,
    policy: ThreadPolicy,
    numa: Numa,
    memory_kib: int,
    hugepage_kib: int | None,
    tenants: Sequence[Tenant],
    latency: bool,
    pci_node: int | None,
    numa_fit: Fit = Fit.PACK,
    cache_fit: CacheFit = CacheFit.PACK,
) -> Placement | Failure:
    passes = (False, True) if policy is ThreadPolicy.PREFER else (False,)
    failure: Failure | None = None
    for partial in passes:
        # the second pass may take the free thread of a core a prefer tenant half uses, never one of a
        # tenant that keeps its cores whole (``sharing.keeps_cores_whole``: VT103 judges its cores)
        usable = free - _guarded(host, tenants) if partial else free
        views = core_views(host, usable, policy, partial=partial, cores=cores)
        by_node: dict[int, list[CoreView]] = {}
        for view in views:
            by_node.setdefault(view.core.node, []).append(view)
        levels = grouping_levels(host, with_nodes=False)
        used = CpuSet().union(*(t.cache for t in tenants))
        ask = Ask(
            host=host,
            by_node=by_node,
            vcpus=vcpus,
            policy=policy,
            memory_kib=memory_kib,
            hugepage_kib=hugepage_kib,
            levels=levels,
            tenants=tenants,
            latency=latency,
            idle_room=idle_rooms(host, views, levels, used),
            numa_fit=numa_fit,
            cache_fit=cache_fit,
            free=free,
        )
        result = _place_pass(ask, views, numa=numa, pci_node=pci_node)
        if isinstance(result, Placement):
            return Placement(
                shares=result.shares,
                partial=partial,
                candidates=result.candidates,
                free_units=result.free_units,
            )
        failure = result
    assert failure is not None
    return failure


def _guarded(host: Host, tenants: Sequence[Tenant]) -> CpuSet:
    """The other threads of the cores that tenants keeping their cores whole use."""
    out = CpuSet()
    for tenant in tenants:
        if tenant.whole_cores:
            for cpu in tenant.cpus:
                core = host.core_of(cpu)
                if core is not None:
                    out = out | core.cpus
    return out


def _place_pass(
    ask: Ask, views: Sequence[CoreView], *, numa: Numa, pci_node: int | None
) -> Placement | Failure:
    host, by_node, vcpus = ask.host, ask.by_node, ask.vcpus
    memory_kib, hugepage_kib = ask.memory_kib, ask.hugepage_kib
    caps = {node: sum(len(v.units) for v in vs) for node, vs in sorted(by_node.items())}
    units = tuple(caps.items())

    if numa.off:
        pick = ask.pick(views, vcpus, grouping_levels(host, with_nodes=True))
        if pick is None:
            return Failure(units=units, memory=())
        return Placement(shares=(NodeShare(node=ANY_NODE, pick=pick, memory_kib=memory_kib),), partial=False,
                         free_units=units)  # fmt: skip

    memory_notes: dict[int, str] = {}
    for node in host.nodes:
        why = memory_shortfall(node, memory_kib, hugepage_kib)
        if why:
            memory_notes[node.id] = why
    wanted = numa.nodes or 0
    if wanted <= 1:
        singles: list[tuple[tuple[int, ...], NodeShare]] = []
        for node_id, node_views in by_node.items():
            if node_id in memory_notes or caps[node_id] < vcpus:
                continue
            # a needless share is weighed against the node's own idle groups (``sharing``)
            pick = replace(ask, idle_room=None, local_room=None).pick(node_views, vcpus)
            if pick is None:
                continue
            key = (int(node_id != pci_node), *_node_key(pick.quality, caps[node_id], ask), node_id)
            singles.append((key, NodeShare(node=node_id, pick=pick, memory_kib=memory_kib)))
        if singles:
            singles.sort(key=lambda item: item[0])
            return Placement(
                shares=(singles[0][1],),
                partial=False,
                candidates=tuple(sorted(share.node for _, share in singles)),
                free_units=units,
            )
        if wanted == 1:
            return Failure(units=units, memory=tuple(sorted(memory_notes.items())))

    share = split_wide(ask, caps, wanted, pci_node)
    if share is not None:
        return Placement(shares=share, partial=False, free_units=units)
    return Failure(units=units, memory=tuple(sorted(memory_notes.items())))


def _node_key(quality: tuple[int, ...], room: int, ask: Ask) -> tuple[int, ...]:
    """How well a node's pick fits (lower is better): fewest cache groups and no needless share, then the
    node by ``--numa-fit`` (pack: least room; spread: most), then the rest of the cache fit. With
    ``--cache-fit spread`` the pick spanning the most groups comes first."""
    fit = room if ask.numa_fit is Fit.PACK else -room
    groups, needless, *rest = quality
    if ask.cache_fit is CacheFit.SPREAD:
        return (needless, -groups, fit, *rest)
    span, *cache = rest
    return (groups, needless, span, fit, *cache)
