"""Spread a guest too big for one node over the fewest, closest nodes (the multi-node rule of ``numa``).

Candidate node sets come best first (fewest nodes, smallest summed SLIT distance, most room); each set is
tried split by cache groups first (no group cut in two at a node boundary), then node by node, filling the
nodes with the least room first in whole cores. Among the sets the node rule ranks alike (same size, same
distance, the PCI node in or out alike) the split spanning the fewest cache groups wins (``split_wide``):
"most room" only breaks ties the cache rule leaves. Memory follows the vCPUs (``split_memory``) and every
node's share must fit its ``MemFree``/free hugepages.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import combinations

from vmtune.core.allocator import CoreView, DomainPick, pick_in_domain
from vmtune.core.intent import ThreadPolicy
from vmtune.core.ledger import Tenant
from vmtune.core.numafit import NodeShare, distance, memory_shortfall, split_memory
from vmtune.core.topology import Host
from vmtune.cpuset import CpuSet

__all__ = ["Ask", "node_sets", "split_by_groups", "split_by_nodes", "split_wide"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Ask:
    """What one placement pass asks of every pick and split it tries (``numa.place`` builds one per pass)."""

    host: Host
    by_node: dict[int, list[CoreView]]
    """The pass's usable cores, by node."""
    vcpus: int
    policy: ThreadPolicy
    memory_kib: int
    hugepage_kib: int | None
    levels: Sequence[int]
    """Cache grouping levels a pick packs into (``allocator.grouping_levels``)."""
    tenants: Sequence[Tenant]
    latency: bool

    def pick(
        self, views: Sequence[CoreView], vcpus: int, levels: Sequence[int] | None = None
    ) -> DomainPick | None:
        """``vcpus`` CPUs among ``views`` (``pick_in_domain``), packed by ``levels`` or the pass's."""
        return pick_in_domain(
            host=self.host,
            views=views,
            vcpus=vcpus,
            policy=self.policy,
            levels=self.levels if levels is None else levels,
            tenants=self.tenants,
            latency=self.latency,
        )


def node_sets(
    host: Host, caps: dict[int, int], vcpus: int, wanted: int, pci_node: int | None
) -> Iterator[tuple[int, ...]]:
    """Candidate node sets, best first: fewest nodes, then closest (sum of pairwise distances), most room."""
    for _, combo in _ranked_sets(host, caps, vcpus, wanted, pci_node):
        yield combo


def split_wide(
    ask: Ask, caps: dict[int, int], wanted: int, pci_node: int | None
) -> tuple[NodeShare, ...] | None:
    """The best split of a guest too big for one node (``wanted`` nodes, or the fewest when 0).

    Node sets come in ``node_sets`` order; every set of the first rank (size, PCI node, distance) that
    splits at all is split, and the one spanning the fewest cache groups (then sharing the fewest with
    other guests) wins, ties to the rule's order. Taking the first set that splits put 32 vCPUs on the
    roomiest pair of big-256 (30 + 14 free CPUs): both L3 groups of one node and 2 vCPUs in another guest's
    L3 on the other, 3 groups where an equally close pair held them in 2 idle L3 groups.
    """
    best: tuple[NodeShare, ...] | None = None
    best_key: tuple[int, int] | None = None
    best_rank: tuple[int, ...] | None = None
    for rank, node_set in _ranked_sets(ask.host, caps, ask.vcpus, wanted, pci_node):
        if best_rank is not None and rank != best_rank:
            break
        shares = split_by_groups(ask, node_set) or split_by_nodes(ask, node_set)
        if shares is None:
            continue
        key = _group_spread(ask, shares)
        if best_key is None or key < best_key:
            best, best_key, best_rank = shares, key, rank
    return best


def _group_spread(ask: Ask, shares: Sequence[NodeShare]) -> tuple[int, int]:
    """(cache groups the split's CPUs span, of them shared with other guests) at the pass's cache levels."""
    host = ask.host
    taken = CpuSet().union(*(t.cpus for t in ask.tenants))
    keys: set[int] = set()
    for share in shares:
        for cpu in share.pick.cpus:
            core = host.core_of(cpu)
            for level in ask.levels:
                key = None if core is None else core.l3 if level == 3 else core.l2 if level == 2 else None
                if key is not None and len(host.caches[key].cpus) > len(host.siblings(cpu)):
                    keys.add(key)  # shared by several cores: a private L2 is no group
    shared = sum(1 for key in keys if not host.caches[key].cpus.isdisjoint(taken))
    return len(keys), shared


def _ranked_sets(
    host: Host, caps: dict[int, int], vcpus: int, wanted: int, pci_node: int | None
) -> Iterator[tuple[tuple[int, ...], tuple[int, ...]]]:
    """(rank by the node rule: size, PCI node missing, distance; node set) best first (``node_sets``).

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
        for combo in sorted(sets, key=rank):
            yield (size, *rank(combo)[:2]), combo


def split_by_groups(ask: Ask, node_set: tuple[int, ...]) -> tuple[NodeShare, ...] | None:
    """Split a wide guest over ``node_set`` by cache groups: the fewest groups of all the set's nodes (the
    largest free ones first, the remainder best fit), each node getting the vCPUs its chosen groups hold.

    Splitting node by node first (``split_by_nodes``) cuts a group in two wherever the per-node count does not
    fall on a group boundary: 8 vCPUs over two nodes with 4-core L2 clusters went 7 + 1 over three
    clusters instead of 4 + 4 over two. None when the host has no such groups, when a node of the set is
    left without vCPUs (the set was not the fewest nodes after all) or a node lacks memory for its share.
    """
    if not any(level in (2, 3) for level in ask.levels):
        return None
    pick = ask.pick([v for n in node_set for v in ask.by_node[n]], ask.vcpus)
    if pick is None:
        return None
    on_node = {n: [c for c in pick.cpus if ask.host.node_of(c) == n] for n in node_set}
    counts = [len(on_node[n]) for n in node_set]
    if any(c == 0 for c in counts):
        return None
    memory = _memory_shares(ask, node_set, counts)
    if memory is None:
        return None
    shares: list[NodeShare] = []
    for node_id, mem in zip(node_set, memory, strict=True):
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


def split_by_nodes(ask: Ask, node_set: tuple[int, ...]) -> tuple[NodeShare, ...] | None:
    by_node, vcpus = ask.by_node, ask.vcpus
    step = (
        1 if ask.policy is ThreadPolicy.ISOLATE else max(len(v.units) for n in node_set for v in by_node[n])
    )
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
    memory = _memory_shares(ask, node_set, counts)
    if memory is None:
        return None
    shares: list[NodeShare] = []
    for node_id, count, mem in zip(node_set, counts, memory, strict=True):
        pick = ask.pick(by_node[node_id], count)
        if pick is None:
            return None
        shares.append(NodeShare(node=node_id, pick=pick, memory_kib=mem))
    return tuple(shares)


def _memory_shares(ask: Ask, node_set: tuple[int, ...], counts: Sequence[int]) -> tuple[int, ...] | None:
    """Each node's part of the memory, following its vCPU count; None when a node can't hold its part."""
    granule = ask.hugepage_kib or 1024
    memory = split_memory(ask.memory_kib, counts, granule) if ask.memory_kib > 0 else (0,) * len(counts)
    for node_id, mem in zip(node_set, memory, strict=True):
        node = ask.host.node(node_id)
        if node is not None and memory_shortfall(node, mem, ask.hugepage_kib):
            return None
    return memory


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
