"""Choose the NUMA node(s) a guest lives on, split wide guests across nodes, and check memory fits.

Rules, applied after the whole-core rule of the thread policy:

* a guest that fits one node gets one node: among the nodes that hold its vCPUs and its memory, the one
  with the best cache-group fit, then the most free room left, ties to the lowest node id; a passthrough
  PCI device's node comes first when it fits (its DMA and interrupts stay local);
* a guest too big for one node spans the fewest nodes, closest by the ACPI SLIT distance matrix; its vCPUs
  fill the nodes with the least room first, in whole cores (no crumbs left behind), and its memory follows
  the vCPUs proportionally;
* memory must fit ``MemFree`` of each node, and with hugepages the node's free pages of that size: a node
  that can't hold its share is skipped, and when nothing fits the error says needed vs. free per node.

This module is the entry (:func:`place`) and the one-node rule; the result types and memory/distance
helpers live in ``numafit`` and the multi-node split in ``numaspan`` (re-exported here, import from here).
"""

from __future__ import annotations

from collections.abc import Sequence

from vmtune.core.intent.model import Numa, ThreadPolicy
from vmtune.core.ledger.pool import Tenant
from vmtune.core.placement.allocator import CoreView, core_views, grouping_levels
from vmtune.core.placement.numafit import (
    ANY_NODE,
    Failure,
    NodeShare,
    Placement,
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
) -> Placement | Failure:
    passes = (False, True) if policy is ThreadPolicy.PREFER else (False,)
    failure: Failure | None = None
    for partial in passes:
        views = core_views(host, free, policy, partial=partial, cores=cores)
        by_node: dict[int, list[CoreView]] = {}
        for view in views:
            by_node.setdefault(view.core.node, []).append(view)
        ask = Ask(
            host=host,
            by_node=by_node,
            vcpus=vcpus,
            policy=policy,
            memory_kib=memory_kib,
            hugepage_kib=hugepage_kib,
            levels=grouping_levels(host, with_nodes=False),
            tenants=tenants,
            latency=latency,
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
            pick = ask.pick(node_views, vcpus)
            if pick is None:
                continue
            key = (int(node_id != pci_node), *pick.quality, vcpus - caps[node_id], node_id)
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
