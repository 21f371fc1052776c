"""Choose the NUMA node(s) a guest lives on, split wide guests across nodes, and check memory fits.

Rules (issue 3, priority 3), applied after the whole-core rule of the thread policy:

* a guest that fits one node gets one node: among the nodes that hold its vCPUs and its memory, the one
  with the best cache-group fit, then the most free room left, ties to the lowest node id; a passthrough
  PCI device's node comes first when it fits (its DMA and interrupts stay local);
* a guest too big for one node spans the fewest nodes, closest by the ACPI SLIT distance matrix; its vCPUs
  fill the nodes with the least room first, in whole cores (no crumbs left behind), and its memory follows
  the vCPUs proportionally;
* memory must fit ``MemFree`` of each node, and with hugepages the node's free pages of that size: a node
  that can't hold its share is skipped, and when nothing fits the error says needed vs. free per node.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import combinations

from vmtune.core.allocator import CoreView, DomainPick, core_views, grouping_levels, pick_in_domain
from vmtune.core.intent import ThreadPolicy
from vmtune.core.ledger import Tenant
from vmtune.core.topology import Core, Host, Node
from vmtune.cpuset import CpuSet

__all__ = [
    "ANY_NODE",
    "Failure",
    "NodeShare",
    "Placement",
    "distance",
    "fmt_kib",
    "memory_shortfall",
    "place",
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


def fmt_kib(kib: int) -> str:
    if kib % (1024 * 1024) == 0:
        return f"{kib // (1024 * 1024)} GiB"
    if kib >= 1024 * 1024:
        return f"{kib / (1024 * 1024):.1f} GiB"
    return f"{kib // 1024} MiB"


def distance(host: Host, a: int, b: int) -> int:
    if a == b:
        return 10
    node = host.node(a)
    dist = node.distance_to(b) if node else None
    # no SLIT (old kernels, s390): treat every remote node alike
    return dist if dist is not None else 20


def memory_shortfall(node: Node, kib: int, hugepage_kib: int | None) -> str | None:
    """Why ``kib`` of guest memory does not fit on ``node`` (None: it fits or the host doesn't say)."""
    if kib <= 0:
        return None
    if hugepage_kib:
        need = -(-kib // hugepage_kib)
        pages = node.hugepages_of(hugepage_kib)
        free = pages.free if pages else 0
        if free < need:
            return f"needs {need} x {fmt_kib(hugepage_kib)} hugepages, {free} free"
        return None
    if node.mem_free_kib is not None and node.mem_free_kib < kib:
        return f"needs {fmt_kib(kib)}, MemFree {fmt_kib(node.mem_free_kib)}"
    return None


def split_memory(total_kib: int, vcpus: Sequence[int], granule_kib: int) -> tuple[int, ...]:
    """Memory per cell proportional to its vCPUs, rounded down to ``granule_kib``; the last takes the rest."""
    whole = sum(vcpus)
    out = [total_kib * v // whole // granule_kib * granule_kib for v in vcpus[:-1]]
    out.append(total_kib - sum(out))
    return tuple(out)


def _pack(caps: Sequence[int], need: int) -> list[int] | None:
    """Fill the nodes with the least room completely and leave the remainder on the roomiest one.

    An even split looks tidier, but on a full host it leaves a core or two free on every node it touched,
    and the next guest then straddles nodes (the benchmark showed 40% more nodes spanned on Phytium).
    """
    if sum(caps) < need or need < len(caps) or min(caps) < 1:
        return None
    # every node of the set gets a step: a node chosen for its memory must also run some of the vCPUs
    alloc = [1] * len(caps)
    need -= len(caps)
    for i in sorted(range(len(caps)), key=lambda i: (caps[i], i)):
        extra = min(caps[i] - 1, need)
        alloc[i] += extra
        need -= extra
    return alloc


def place(
    *,
    host: Host,
    free: CpuSet,
    cores: Sequence[Core],
    vcpus: int,
    policy: ThreadPolicy,
    numa: str,
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
        result = _place_pass(
            host=host,
            views=views,
            vcpus=vcpus,
            policy=policy,
            numa=numa,
            memory_kib=memory_kib,
            hugepage_kib=hugepage_kib,
            tenants=tenants,
            latency=latency,
            pci_node=pci_node,
        )
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
    *,
    host: Host,
    views: Sequence[CoreView],
    vcpus: int,
    policy: ThreadPolicy,
    numa: str,
    memory_kib: int,
    hugepage_kib: int | None,
    tenants: Sequence[Tenant],
    latency: bool,
    pci_node: int | None,
) -> Placement | Failure:
    by_node: dict[int, list[CoreView]] = {}
    for view in views:
        by_node.setdefault(view.core.node, []).append(view)
    caps = {node: sum(len(v.units) for v in vs) for node, vs in sorted(by_node.items())}
    units = tuple(caps.items())
    levels = grouping_levels(host, with_nodes=False)

    if numa == "off":
        pick = pick_in_domain(
            host=host,
            views=views,
            vcpus=vcpus,
            policy=policy,
            levels=grouping_levels(host, with_nodes=True),
            tenants=tenants,
            latency=latency,
        )
        if pick is None:
            return Failure(units=units, memory=())
        return Placement(shares=(NodeShare(node=ANY_NODE, pick=pick, memory_kib=memory_kib),), partial=False,
                         free_units=units)  # fmt: skip

    memory_notes: dict[int, str] = {}
    for node in host.nodes:
        why = memory_shortfall(node, memory_kib, hugepage_kib)
        if why:
            memory_notes[node.id] = why
    wanted = int(numa) if numa.isdigit() else 0
    if wanted <= 1:
        singles: list[tuple[tuple[int, ...], NodeShare]] = []
        for node_id, node_views in by_node.items():
            if node_id in memory_notes or caps[node_id] < vcpus:
                continue
            pick = pick_in_domain(
                host=host,
                views=node_views,
                vcpus=vcpus,
                policy=policy,
                levels=levels,
                tenants=tenants,
                latency=latency,
            )
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

    for node_set in _node_sets(host, caps, vcpus, wanted, pci_node):
        share = _split_by_groups(
            host=host,
            node_set=node_set,
            by_node=by_node,
            vcpus=vcpus,
            policy=policy,
            memory_kib=memory_kib,
            hugepage_kib=hugepage_kib,
            levels=levels,
            tenants=tenants,
            latency=latency,
        ) or _split(
            host=host,
            node_set=node_set,
            by_node=by_node,
            vcpus=vcpus,
            policy=policy,
            memory_kib=memory_kib,
            hugepage_kib=hugepage_kib,
            levels=levels,
            tenants=tenants,
            latency=latency,
        )
        if share is not None:
            return Placement(shares=share, partial=False, free_units=units)
    return Failure(units=units, memory=tuple(sorted(memory_notes.items())))


def _node_sets(
    host: Host, caps: dict[int, int], vcpus: int, wanted: int, pci_node: int | None
) -> Iterator[tuple[int, ...]]:
    """Candidate node sets, best first: fewest nodes, then closest (sum of pairwise distances), most room.

    Exhaustive over combinations on hosts with up to 8 CPU nodes; on bigger ones (64-node Itanium, 16-node
    900-CPU hosts) greedy growth by distance from every start node, to stay fast. Sets of the next size are
    only computed when every set of this size failed (memory, cache fit).
    """
    ids = [n for n, c in caps.items() if c > 0]
    dist = {(a, b): distance(host, a, b) for a in ids for b in ids}

    def rank(combo: tuple[int, ...]) -> tuple[int, int, int, tuple[int, ...]]:
        spread = sum(dist[a, b] for a, b in combinations(combo, 2))
        return (
            int(pci_node is not None and pci_node not in combo),
            spread,
            -sum(caps[n] for n in combo),
            combo,
        )

    sizes = [wanted] if wanted > 1 else list(range(2, len(ids) + 1))
    for size in sizes:
        if size > len(ids):
            return
        sets: set[tuple[int, ...]] = set()
        if len(ids) <= 8:
            sets.update(c for c in combinations(ids, size) if sum(caps[n] for n in c) >= vcpus)
        else:
            for start in ids:
                chosen = [start]
                while len(chosen) < size:
                    rest = [n for n in ids if n not in chosen]
                    chosen.append(min(rest, key=lambda n: (sum(dist[n, c] for c in chosen), -caps[n], n)))
                if sum(caps[n] for n in chosen) >= vcpus:
                    sets.add(tuple(sorted(chosen)))
        yield from sorted(sets, key=rank)


def _split_by_groups(
    *,
    host: Host,
    node_set: tuple[int, ...],
    by_node: dict[int, list[CoreView]],
    vcpus: int,
    policy: ThreadPolicy,
    memory_kib: int,
    hugepage_kib: int | None,
    levels: Sequence[int],
    tenants: Sequence[Tenant],
    latency: bool,
) -> tuple[NodeShare, ...] | None:
    """Split a wide guest over ``node_set`` by cache groups: the fewest groups of all the set's nodes (the
    largest free ones first, the remainder best fit), each node getting the vCPUs its chosen groups hold.

    Splitting node by node first (``_split``) cuts a group in two wherever the per-node count does not
    fall on a group boundary: 8 vCPUs over two nodes with 4-core L2 clusters went 7 + 1 over three
    clusters instead of 4 + 4 over two. None when the host has no such groups, when a node of the set is
    left without vCPUs (the set was not the fewest nodes after all) or a node lacks memory for its share.
    """
    if not any(level in (2, 3) for level in levels):
        return None
    views = [v for n in node_set for v in by_node[n]]
    pick = pick_in_domain(
        host=host, views=views, vcpus=vcpus, policy=policy, levels=levels, tenants=tenants, latency=latency
    )
    if pick is None:
        return None
    on_node = {n: [c for c in pick.cpus if host.node_of(c) == n] for n in node_set}
    counts = [len(on_node[n]) for n in node_set]
    if any(c == 0 for c in counts):
        return None
    granule = hugepage_kib or 1024
    memory = split_memory(memory_kib, counts, granule) if memory_kib > 0 else (0,) * len(counts)
    shares: list[NodeShare] = []
    for node_id, mem in zip(node_set, memory, strict=True):
        node = host.node(node_id)
        if node is not None and memory_shortfall(node, mem, hugepage_kib):
            return None
        mine = CpuSet(on_node[node_id])
        groups = tuple(g for g in pick.groups if not g.cpus.isdisjoint(mine))
        sub = DomainPick(
            cpus=tuple(on_node[node_id]),
            cores=tuple(c for c in pick.cores if c.node == node_id),
            groups=groups,
            quality=pick.quality,
        )
        shares.append(NodeShare(node=node_id, pick=sub, memory_kib=mem))
    return tuple(shares)


def _split(
    *,
    host: Host,
    node_set: tuple[int, ...],
    by_node: dict[int, list[CoreView]],
    vcpus: int,
    policy: ThreadPolicy,
    memory_kib: int,
    hugepage_kib: int | None,
    levels: Sequence[int],
    tenants: Sequence[Tenant],
    latency: bool,
) -> tuple[NodeShare, ...] | None:
    step = 1 if policy is ThreadPolicy.ISOLATE else max(len(v.units) for n in node_set for v in by_node[n])
    counts: list[int] | None = None
    for s in dict.fromkeys((step, 1)):
        need = -(-vcpus // s)
        alloc = _pack([sum(len(v.units) for v in by_node[n]) // s for n in node_set], need)
        if alloc is not None:
            counts = [a * s for a in alloc]
            # trim the overshoot of the last step (odd vCPU count) from the largest, highest-id share
            over = sum(counts) - vcpus
            big = max(range(len(counts)), key=lambda i: (counts[i], i))
            counts[big] -= over
            break
    if counts is None or any(c <= 0 for c in counts):
        return None
    granule = hugepage_kib or 1024
    memory = split_memory(memory_kib, counts, granule) if memory_kib > 0 else (0,) * len(counts)
    shares: list[NodeShare] = []
    for node_id, count, mem in zip(node_set, counts, memory, strict=True):
        node = host.node(node_id)
        if node is not None and memory_shortfall(node, mem, hugepage_kib):
            return None
        pick = pick_in_domain(
            host=host,
            views=by_node[node_id],
            vcpus=count,
            policy=policy,
            levels=levels,
            tenants=tenants,
            latency=latency,
        )
        if pick is None:
            return None
        shares.append(NodeShare(node=node_id, pick=pick, memory_kib=mem))
    return tuple(shares)
