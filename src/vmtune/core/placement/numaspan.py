"""Spread a guest too big for one node over the fewest, closest nodes (the multi-node rule of ``numa``).

Candidate node sets come best first (fewest nodes, smallest summed SLIT distance, then by the NUMA fit:
``pack`` the set with the least room that still holds the guest, ``spread`` the most); each set is split
as evenly as its nodes allow, in whole cores (a node with less room than its even share gives the rest to
the others), so the guest's cells are alike. Among the sets the node rule ranks alike (same size, same
distance, the PCI node in or out alike) the split spanning the fewest cache groups wins (``split_wide``):
the room only breaks ties the cache rule leaves; an even split that spans more cache groups than a split
by groups loses to it. Memory follows the vCPUs (``split_memory``) and every
node's share must fit its ``MemFree``/free hugepages.
"""

from __future__ import annotations

from bisect import insort
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from itertools import combinations
from math import comb

from vmtune.core.intent.model import Fit, ThreadPolicy
from vmtune.core.ledger.pool import Tenant
from vmtune.core.placement.allocator import CoreView, DomainPick, idle_rooms, is_cache_level, pick_in_domain
from vmtune.core.placement.numafit import NodeShare, distance, memory_shortfall, split_memory
from vmtune.core.topology.model import Host
from vmtune.cpuset import CpuSet
from vmtune.units import MIB

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
    idle_room: dict[int, int] | None = None
    """``allocator.idle_rooms`` over the pass: whether an idle group anywhere could hold a guest's part."""
    numa_fit: Fit = Fit.PACK
    cache_fit: Fit = Fit.PACK
    free: CpuSet | None = None
    """The pass's free CPUs (``allocator.pick_in_domain``)."""
    local_room: dict[int, int] | None = None
    """``allocator.idle_rooms`` where a part of the guest could go instead (None: the picked views)."""

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
            idle_room=self.idle_room,
            spread=self.cache_fit is Fit.SPREAD,
            free=self.free,
            local_room=self.local_room,
        )

    def room(self, node_id: int, units: int) -> int:
        """vCPUs of this guest ``node_id`` can take: its ``units``, and no more than its free memory (or
        free hugepages) backs - memory follows the vCPUs (``split_memory``; a granule of slack for its
        rounding). Node sets are searched by this room: a 16-node host whose nodes each hold half the
        guest's memory otherwise tried every pair (and, on hugepage shortage, every set) before failing."""
        node = self.host.node(node_id)
        if self.memory_kib <= 0 or node is None:
            return units
        granule = self.hugepage_kib or MIB
        if self.hugepage_kib:
            pages = node.hugepages_of(self.hugepage_kib)
            free = (pages.free if pages else 0) * self.hugepage_kib
        elif node.mem_free_kib is not None:
            free = node.mem_free_kib
        else:
            return units
        return min(units, (free + granule) * self.vcpus // self.memory_kib)


def node_sets(
    host: Host, caps: dict[int, int], vcpus: int, wanted: int, pci_node: int | None, *, fit: Fit = Fit.PACK
) -> Iterator[tuple[int, ...]]:
    """Candidate node sets, best first: fewest nodes, then closest (sum of pairwise distances), then the
    least room that holds the guest (``pack``) or the most (``spread``)."""
    for _, combo in _ranked_sets(host, caps, vcpus, wanted, pci_node, fit=fit):
        yield combo


def split_wide(
    ask: Ask, caps: dict[int, int], wanted: int, pci_node: int | None
) -> tuple[NodeShare, ...] | None:
    """The best split of a guest too big for one node (``wanted`` nodes, or the fewest when 0).

    Node sets come in ``node_sets`` order; every set of the first rank (size, PCI node, distance) that
    splits at all is split two ways - evenly (``split_by_nodes``) and by cache groups
    (``split_by_groups``) - and the split with no needless cache share, spanning the fewest cache groups
    (then sharing the fewest with other guests), then the most even wins, ties to the rule's order: the
    best-fitting of equally close pairs may hold the guest only across more cache groups than another
    pair does. An even split that cuts one more cache group loses: 10 vCPUs over two nodes of 3 + 4 free
    cores per L2 cluster go 7 + 3 over three clusters, not 5 + 5 over four.
    """
    best: tuple[NodeShare, ...] | None = None
    best_key: tuple[int, int, int, int] | None = None
    best_rank: tuple[int, ...] | None = None
    room = {node: ask.room(node, units) for node, units in caps.items()}
    for rank, node_set in _ranked_sets(ask.host, room, ask.vcpus, wanted, pci_node, fit=ask.numa_fit):
        if best_rank is not None and rank != best_rank:
            break
        # the idle groups a spread guest can use are its own nodes' (``sharing``)
        views = [v for n in node_set for v in ask.by_node[n]]
        used = CpuSet().union(*(t.cache for t in ask.tenants))
        rooms = idle_rooms(ask.host, views, ask.levels, used)
        here = replace(ask, idle_room=rooms, local_room=rooms)
        even, by_groups = split_by_nodes(here, node_set), split_by_groups(here, node_set)
        for shares, needless in (
            (even, sum(s.pick.quality[1] for s in even or ())),
            (by_groups, by_groups[0].pick.quality[1] if by_groups else 0),
        ):
            if shares is None:
                continue
            key = (needless, *_group_spread(ask, shares), _imbalance(shares))
            if best_key is None or key < best_key:
                best, best_key, best_rank = shares, key, rank
    return best


def _imbalance(shares: Sequence[NodeShare]) -> int:
    """vCPUs between the largest and the smallest share: 0 for alike cells."""
    counts = [len(s.pick.cpus) for s in shares]
    return max(counts) - min(counts)


def _group_spread(ask: Ask, shares: Sequence[NodeShare]) -> tuple[int, int]:
    """(cache groups the split's CPUs span, of them shared with other guests) at the pass's cache levels."""
    host = ask.host
    taken = CpuSet().union(*(t.cache for t in ask.tenants))
    keys: set[int] = set()
    for share in shares:
        for cpu in share.pick.cpus:
            core = host.core_of(cpu)
            for level in ask.levels:
                key = None if core is None or not is_cache_level(level) else core.caches.get(level)
                if key is not None and len(host.caches[key].cpus) > len(host.siblings(cpu)):
                    keys.add(key)  # shared by several cores: a private L2 is no group
    shared = sum(1 for key in keys if not host.caches[key].cpus.isdisjoint(taken))
    return len(keys), shared


def _ranked_sets(
    host: Host, caps: dict[int, int], vcpus: int, wanted: int, pci_node: int | None, *, fit: Fit
) -> Iterator[tuple[tuple[int, ...], tuple[int, ...]]]:
    """(rank by the node rule: size, PCI node missing, distance; node set) best first (``node_sets``).

    Sizes start at the fewest nodes whose free units can hold the guest at all, and every set of a size
    that holds it is ranked, however far apart its nodes are: the node count outranks distance. Sets of the
    next size are only computed when every set of this size failed (memory, cache fit). Up to
    ``_EXHAUSTIVE`` combinations are ranked outright; beyond (16-node 960-CPU hosts, 64-node Itanium)
    ``_Search`` finds the ``_TRIED`` best of them by branch and bound, in the same order. Growing a set
    greedily by distance is not enough: on a nearly full host the only pair that holds the guest may sit
    on far sockets, and a greedy walk from either node takes a closer node with too little room first.
    """
    ids = tuple(sorted(n for n, c in caps.items() if c > 0))
    dist = {(a, b): distance(host, a, b) for a in ids for b in ids}
    sign = 1 if fit is Fit.PACK else -1

    def rank(combo: tuple[int, ...]) -> tuple[int, int, int, tuple[int, ...]]:
        spread = sum(dist[a, b] for a, b in combinations(combo, 2))
        return (
            int(pci_node is not None and pci_node not in combo),
            spread,
            sign * sum(caps[n] for n in combo),
            combo,
        )

    sizes = [wanted] if wanted > 1 else list(range(max(2, _fewest_nodes(caps, vcpus)), len(ids) + 1))
    for size in sizes:
        if size > len(ids):
            return
        if comb(len(ids), size) <= _EXHAUSTIVE:
            sets = sorted((c for c in combinations(ids, size) if sum(caps[n] for n in c) >= vcpus), key=rank)
        else:
            search = _Search(
                ids=ids, caps=caps, dist=dist, size=size, vcpus=vcpus, pci_node=pci_node, sign=sign
            )
            sets = search.best(_TRIED)
        for combo in sets:
            yield (size, *rank(combo)[:2]), combo


_EXHAUSTIVE = 1024
"""Combinations of one size ranked outright (8 nodes: at most 70; 16 nodes: sizes 2, 3 and 13-16)."""
_TRIED = 64
"""Beyond that, the best sets of one size tried before the next size: when all of them fail (memory,
hugepages), going through all C(16, 8) = 12870 would take seconds for a guest that then fails anyway."""
_VISITS = 4096
"""Branches ``_Search`` visits at most per size: about 0.1 s on a 64-node host, over the most any test host
needs (16 nodes: about 2400), so the search is exact there and bounded everywhere."""


def _fewest_nodes(caps: dict[int, int], vcpus: int) -> int:
    """The fewest nodes whose free units hold ``vcpus`` (the roomiest first); more than all when none do."""
    total = 0
    for count, cap in enumerate(sorted(caps.values(), reverse=True), 1):
        total += cap
        if total >= vcpus:
            return count
    return len(caps) + 1


@dataclass(frozen=True, slots=True, kw_only=True)
class _Search:
    """The sets of ``size`` of the nodes ``ids`` whose free units (``caps``) hold ``vcpus``, in the node
    rule's order, without listing every combination (C(16, 8) = 12870)."""

    ids: tuple[int, ...]
    caps: dict[int, int]
    dist: dict[tuple[int, int], int]
    size: int
    vcpus: int
    pci_node: int | None
    sign: int = -1
    """-1: the most room first among equally close sets (``spread``); 1: the least (``pack``)."""

    def best(self, limit: int) -> list[tuple[int, ...]]:
        """The ``limit`` best sets by the node rule's rank (PCI node missing, summed distance, room by the
        fit, ids), best first: branch and bound over the combinations in id order.

        A branch is cut when its nodes can't hold the guest even with the roomiest of the nodes after them,
        or when its distance can't get below the ``limit``-th best found: what it has, plus the smallest
        distances of the nodes after it to the nodes in it (one per missing pick), plus the closest pair's
        distance for each pair among the missing picks. The sets grown from each node (``grow``) are the
        first found, so the bound is tight from the start. The search stops after ``_VISITS`` branches
        with the best sets found so far (the grown ones at least): on 64 nodes C(64, 16) sets would never end.
        """
        ids, caps, dist, pci = self.ids, self.caps, self.dist, self.pci_node
        n = len(ids)
        dmin = min((dist[a, b] for a, b in combinations(ids, 2)), default=0)
        top: list[tuple[int, int, int, tuple[int, ...]]] = []

        def offer(combo: tuple[int, ...], spread: int) -> None:
            rank = (
                int(pci is not None and pci not in combo),
                spread,
                self.sign * sum(caps[c] for c in combo),
                combo,
            )
            if rank in top or (len(top) >= limit and rank >= top[-1]):
                return
            insort(top, rank)
            del top[limit:]

        for grown in map(self.grow, ids):
            if grown is not None:
                offer(grown, sum(dist[a, b] for a, b in combinations(grown, 2)))
        chosen: list[int] = []
        budget = [_VISITS]

        def visit(first: int, spread: int, cap: int, add: list[int]) -> None:
            budget[0] -= 1
            left = self.size - len(chosen)
            if budget[0] < 0:
                return
            if left == 0:
                if cap >= self.vcpus:
                    offer(tuple(chosen), spread)
                return
            rest = range(first, n)
            if (
                len(rest) < left
                or cap + sum(sorted((caps[ids[i]] for i in rest), reverse=True)[:left]) < self.vcpus
            ):
                return
            if len(top) >= limit:
                pci_out = pci is not None and pci not in chosen and pci not in ids[first:]
                bound = spread + sum(sorted(add[i] for i in rest)[:left]) + left * (left - 1) // 2 * dmin
                if (int(pci_out), bound) > top[-1][:2]:
                    return
            for i in rest:
                node = ids[i]
                chosen.append(node)
                visit(
                    i + 1,
                    spread + add[i],
                    cap + caps[node],
                    [a + dist[ids[j], node] for j, a in enumerate(add)],
                )
                chosen.pop()

        visit(0, 0, 0, [0] * n)
        return [rank[3] for rank in top]

    def grow(self, start: int) -> tuple[int, ...] | None:
        """A set from ``start``, adding the closest node that keeps the set able to hold the guest (None
        when no set of this size holding it contains ``start``)."""
        caps, chosen = self.caps, [start]
        while len(chosen) < self.size:
            left = self.size - len(chosen) - 1
            room = sum(caps[c] for c in chosen)
            # the roomiest other nodes: a candidate among the first ``left`` leaves its place to the next
            order = sorted((c for c in self.ids if c not in chosen), key=lambda c: -caps[c])
            top = sum(caps[c] for c in order[:left])
            spare = caps[order[left]] if left < len(order) else 0
            best: tuple[int, int, int] | None = None
            for rank, node in enumerate(order):
                others = top - caps[node] + spare if rank < left else top
                if room + caps[node] + others < self.vcpus:
                    continue
                key = (sum(self.dist[node, c] for c in chosen), -caps[node], node)
                best = key if best is None else min(best, key)
            if best is None:
                return None
            chosen.append(best[2])
        return tuple(sorted(chosen)) if sum(self.caps[c] for c in chosen) >= self.vcpus else None


def split_by_groups(ask: Ask, node_set: tuple[int, ...]) -> tuple[NodeShare, ...] | None:
    """Split a wide guest over ``node_set`` by cache groups: the fewest groups of all the set's nodes (the
    largest free ones first, the remainder best fit), each node getting the vCPUs its chosen groups hold.

    Splitting node by node first (``split_by_nodes``) cuts a group in two wherever the per-node count does not
    fall on a group boundary: 8 vCPUs over two nodes with 4-core L2 clusters went 7 + 1 over three
    clusters instead of 4 + 4 over two. None when the host has no such groups, when a node of the set is
    left without vCPUs (the set was not the fewest nodes after all) or a node lacks memory for its share.
    """
    if ask.cache_fit is Fit.SPREAD or not any(is_cache_level(level) for level in ask.levels):
        return None
    pick = ask.pick([v for n in node_set for v in ask.by_node[n]], ask.vcpus)
    if pick is None:
        return None
    on_node: dict[int, list[int]] = {n: [] for n in node_set}
    for cpu in pick.cpus:
        node = ask.host.node_of(cpu)
        if node in on_node:
            on_node[node].append(cpu)
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
        alloc = _even([ask.room(n, sum(len(v.units) for v in by_node[n])) // s for n in node_set], need)
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
    granule = ask.hugepage_kib or MIB
    memory = split_memory(ask.memory_kib, counts, granule) if ask.memory_kib > 0 else (0,) * len(counts)
    for node_id, mem in zip(node_set, memory, strict=True):
        node = ask.host.node(node_id)
        if node is not None and memory_shortfall(node, mem, ask.hugepage_kib):
            return None
    return memory


def _even(caps: Sequence[int], need: int) -> list[int] | None:
    """``need`` steps over the nodes as evenly as their room (``caps``, in steps) allows: each node its
    even share or all it has, the rest spread over the nodes with room left, in set order.

    An even split gives the guest alike cells (its scheduler balances them as equals); filling the nodes
    with the least room first went 12/12/12/4 over four nodes.
    """
    if sum(caps) < need or need < len(caps) or min(caps) < 1:
        return None
    n, left = len(caps), need
    alloc = [0] * n
    # the nodes with the least room first: what they can't take of their share goes to the roomier ones
    for done, i in enumerate(sorted(range(n), key=lambda i: (caps[i], i))):
        alloc[i] = min(caps[i], left // (n - done))
        left -= alloc[i]
    while left:
        for i in range(n):
            if left and alloc[i] < caps[i]:
                alloc[i] += 1
                left -= 1
    return alloc
