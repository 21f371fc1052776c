"""Spread a guest too big for one node over the fewest, closest nodes (the multi-node rule of ``numa``).

Candidate node sets come best first (fewest nodes, smallest summed SLIT distance, then by the NUMA fit:
``pack`` the set with the least room that still holds the guest, ``spread`` the most); each set is split
as evenly as its nodes allow, in whole cores (a node with less room than its even share gives the rest to
the others), so the guest's cells are alike. Among the sets the node rule ranks alike (same size, same
distance, the PCI node in or out alike) the split spanning the fewest cache groups wins (``split_wide``):
the room only breaks ties the cache rule leaves; an even split that spans more cache groups than a split
by groups loses to it. With ``--numa-fit pack`` the set with the least room comes next, then the split
that leaves the most room on one node (the fuller nodes filled first, ``_fill``): an even 8 + 8 over two
nodes of 14 free CPUs leaves 6 + 6, where no later 12-vCPU guest fits one node. Memory follows the vCPUs
(``split_memory``) and every node's share must fit its ``MemFree``/free hugepages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from vmtune.core.intent.model import CacheFit, Fit, ThreadPolicy
from vmtune.core.ledger.pool import Tenant
from vmtune.core.placement.allocator import CoreView, DomainPick, idle_rooms, is_cache_level, pick_in_domain
from vmtune.core.placement.nodesets import node_sets, ranked_sets
from vmtune.core.placement.numafit import NodeShare, memory_shortfall, split_memory
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
    """``allocator.idle_rooms`` where the guest could go instead (None: the picked views, e.g. one node's)."""
    numa_fit: Fit = Fit.PACK
    cache_fit: CacheFit = CacheFit.PACK
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
            spread=self.cache_fit is CacheFit.SPREAD,
            own=self.cache_fit is CacheFit.OWN,
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
    cores per L2 cluster go 7 + 3 over three clusters, not 5 + 5 over four. With ``pack`` (and no
    ``--numa N``) the filling split (``_fill``) is tried too, and among splits alike in cache groups the set
    with the least room, then the split leaving the largest hole on one node, wins over the even one;
    sharing fewer groups with other guests only breaks the ties left (a set that closes a busy group's hole
    exactly beats one that breaks an idle group and leaves a one-core sliver on another node).
    """
    best: tuple[NodeShare, ...] | None = None
    best_key: tuple[int, ...] | None = None
    pack = ask.numa_fit is Fit.PACK
    best_rank: tuple[int, ...] | None = None
    room = {node: ask.room(node, units) for node, units in caps.items()}
    for rank, node_set in ranked_sets(ask.host, room, ask.vcpus, wanted, pci_node, fit=ask.numa_fit):
        if best_rank is not None and rank != best_rank:
            break
        # the idle groups a spread guest can use are its own nodes' (``sharing``)
        views = [v for n in node_set for v in ask.by_node[n]]
        used = CpuSet().union(*(t.cache for t in ask.tenants))
        rooms = idle_rooms(ask.host, views, ask.levels, used)
        here = replace(ask, idle_room=rooms, local_room=rooms)
        even, by_groups = split_by_nodes(here, node_set), split_by_groups(here, node_set)
        # packing: the split filling the set's fuller nodes leaves the roomiest one's hole whole
        filled = split_by_nodes(here, node_set, fill=True) if pack and wanted <= 1 else None
        for shares, needless in (
            (even, sum(s.pick.quality[1] for s in even or ())),
            (by_groups, by_groups[0].pick.quality[1] if by_groups else 0),
            (filled, sum(s.pick.quality[1] for s in filled or ())),
        ):
            if shares is None:
                continue
            groups, shared = _group_spread(ask, shares)
            fit = (sum(room[n] for n in node_set), -_largest_left(shares, room)) if pack else (0, 0)
            key = (needless, groups, *fit, shared, _imbalance(shares))
            if best_key is None or key < best_key:
                best, best_key, best_rank = shares, key, rank
    return best


def _largest_left(shares: Sequence[NodeShare], room: dict[int, int]) -> int:
    """The most vCPUs one node of the split has room for after the guest: the hole a later guest finds."""
    return max(room[s.node] - len(s.pick.cpus) for s in shares)


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


def split_by_groups(ask: Ask, node_set: tuple[int, ...]) -> tuple[NodeShare, ...] | None:
    """Split a wide guest over ``node_set`` by cache groups: the fewest groups of all the set's nodes (the
    largest free ones first, the remainder best fit), each node getting the vCPUs its chosen groups hold.

    Splitting node by node first (``split_by_nodes``) cuts a group in two wherever the per-node count does not
    fall on a group boundary: 8 vCPUs over two nodes with 4-core L2 clusters went 7 + 1 over three
    clusters instead of 4 + 4 over two. None when the host has no such groups, when a node of the set is
    left without vCPUs (the set was not the fewest nodes after all) or a node lacks memory for its share.
    """
    if ask.cache_fit is CacheFit.SPREAD or not any(is_cache_level(level) for level in ask.levels):
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


def split_by_nodes(
    ask: Ask, node_set: tuple[int, ...], *, fill: bool = False
) -> tuple[NodeShare, ...] | None:
    """Split a wide guest over ``node_set`` node by node, in whole cores: as evenly as the nodes' room
    allows (``_even``), or with ``fill`` the nodes with the least room taken whole and the rest on the
    roomiest (``_fill``)."""
    by_node, vcpus = ask.by_node, ask.vcpus
    share = _fill if fill else _even
    step = (
        1 if ask.policy is ThreadPolicy.ISOLATE else max(len(v.units) for n in node_set for v in by_node[n])
    )
    counts: list[int] | None = None
    for s in dict.fromkeys((step, 1)):
        need = -(-vcpus // s)
        alloc = share([ask.room(n, sum(len(v.units) for v in by_node[n])) // s for n in node_set], need)
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


def _fill(caps: Sequence[int], need: int) -> list[int] | None:
    """``need`` steps over the nodes, the ones with the least room (``caps``, in steps) filled first and
    every node keeping at least one: what is left free gathers on the roomiest node, where a later guest
    finds it in one piece (kubelet's packed policy takes whole nodes first the same way)."""
    if sum(caps) < need or need < len(caps) or min(caps) < 1:
        return None
    n, left = len(caps), need
    alloc = [0] * n
    for done, i in enumerate(sorted(range(n), key=lambda i: (caps[i], i))):
        alloc[i] = min(caps[i], left - (n - done - 1))
        left -= alloc[i]
    return alloc if left == 0 else None


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
