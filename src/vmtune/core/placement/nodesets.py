"""Which node sets a guest too big for one node may span, best first (the node rule of ``numaspan``).

Fewest nodes first, then a passthrough device's node in, then closest (summed ACPI SLIT distance), then
by ``--numa-fit``: ``pack`` the set with the least room that still holds the guest, ``spread`` the most.
Small hosts rank every combination; 16- and 64-node hosts find the best ones by branch and bound.
"""

from __future__ import annotations

from bisect import insort
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import combinations
from math import comb

from vmtune.core.intent.model import Fit
from vmtune.core.placement.numafit import distance
from vmtune.core.topology.model import Host

__all__ = ["node_sets", "ranked_sets"]


def node_sets(
    host: Host, caps: dict[int, int], vcpus: int, wanted: int, pci_node: int | None, *, fit: Fit = Fit.PACK
) -> Iterator[tuple[int, ...]]:
    """Candidate node sets, best first: fewest nodes, then closest (sum of pairwise distances), then the
    least room that holds the guest (``pack``) or the most (``spread``)."""
    for _, combo in ranked_sets(host, caps, vcpus, wanted, pci_node, fit=fit):
        yield combo


def ranked_sets(
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
