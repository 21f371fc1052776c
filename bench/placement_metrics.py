"""What a run scores, measured against the topology minimum, never against the pool a placer left itself.

* nodes over min: per guest, NUMA nodes spanned minus the fewest nodes that could hold it on the empty host
  (its vCPUs over the nodes' guest pools, largest first: ceil(vCPUs / node size) on a uniform host);
* groups over min: the same for cache groups. A CPU's cache group is the finest cache shared by several
  cores that it sits in: the L2 where cores share one (Phytium clusters, E-core clusters), else the L3 (CCX,
  CCD, die, socket); a private L2 is no group. A host without shared caches scores 0;
* cores shared: physical cores whose CPUs two guests hold; groups shared: cache groups two guests use;
* balance: at 25/50/75 % of the pool used, the busiest node's used CPUs over the mean of the nodes.

The pool is what every placer may use: online CPUs minus the reserve, the same for all of them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from placement_runs import Placed, Run, pool_of

from vmtune.core.topology.model import Host
from vmtune.cpuset import CpuSet

__all__ = ["FILLS", "Score", "Span", "Spans", "fewest", "forced_nodes", "group_of", "score"]

FILLS = (0.25, 0.5, 0.75)


def group_of(host: Host) -> Callable[[int], int | None]:
    """CPU -> its finest cache group shared by several cores (index into ``host.caches``), None if none."""
    cores_in: Counter[int] = Counter()
    for core in host.cores:
        for key in set(core.caches.values()):
            cores_in[key] += 1
    finest: dict[int, int | None] = {}
    for core in host.cores:
        shared = [core.caches[lvl] for lvl in sorted(core.caches) if cores_in[core.caches[lvl]] > 1]
        for cpu in core.cpus:
            finest[cpu] = shared[0] if shared else None
    return finest.get


def fewest(sizes: Sequence[int], n: int) -> int:
    """Fewest of these containers (largest first) that hold ``n``."""
    total = count = 0
    for size in sorted(sizes, reverse=True):
        if total >= n:
            break
        total += size
        count += 1
    return count


@dataclass(frozen=True, slots=True, kw_only=True)
class Score:
    placed: int
    placed_whole: int
    """Guests placed on cores no earlier guest uses (a guest that split a core does not count: kubelet's
    ``full-pcpus-only`` would refuse it on a host whose CPUs-per-core it reads right)."""
    refused: int
    nodes_over: int
    groups_over: int
    cores_shared: int
    cpus_twice: int
    """CPUs given to more than one guest (kubelet's ``takeFullCores`` takes a whole core's CPUs, the
    taken sibling too, where an offline CPU made its CPUs-per-core 1)."""
    groups_shared: int
    ms_per_guest: float
    balance: tuple[float | None, ...]
    """Busiest node / mean node load at each of ``FILLS`` (None: the run never got there)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Span:
    """One guest's NUMA nodes and cache groups, and the topology minimum of each."""

    nodes: int
    min_nodes: int
    groups: frozenset[int]
    min_groups: int


class Spans:
    """Measures guests on one host: the node and group sizes of its pool on the empty host."""

    def __init__(self, host: Host) -> None:
        pool = pool_of(host)
        self.host = host
        self.group = group_of(host)
        self.node_sizes = [len(n.cpus & pool) for n in host.nodes if n.cpus & pool]
        self.group_sizes = list(Counter(g for c in pool if (g := self.group(c)) is not None).values())

    def of(self, p: Placed) -> Span:
        groups = frozenset(g for c in p.cpus if (g := self.group(c)) is not None)
        return Span(
            nodes=len(self.host.nodes_of(p.cpus)),
            min_nodes=fewest(self.node_sizes, p.vcpus),
            groups=groups,
            min_groups=fewest(self.group_sizes, p.vcpus) if self.group_sizes else len(groups),
        )


def score(host: Host, run: Run) -> Score:
    spans = Spans(host)
    nodes_over = groups_over = 0
    core_users: dict[int, set[int]] = {}
    group_users: dict[int, set[int]] = {}
    cpu_users: Counter[int] = Counter()
    for p in run.placed:
        cpu_users.update(p.cpus)
        span = spans.of(p)
        nodes_over += span.nodes - span.min_nodes
        groups_over += len(span.groups) - span.min_groups
        groups = span.groups
        for cpu in p.held:
            core = host.core_of(cpu)
            if core is not None:
                core_users.setdefault(core.index, set()).add(p.index)
        for g in groups:
            group_users.setdefault(g, set()).add(p.index)
    splitters = {
        max(users) for users in core_users.values() if len(users) > 1
    }  # the later guest of each split core
    return Score(
        placed=len(run.placed),
        placed_whole=len(run.placed) - len(splitters),
        refused=run.refused,
        nodes_over=nodes_over,
        groups_over=groups_over,
        cores_shared=sum(1 for users in core_users.values() if len(users) > 1),
        cpus_twice=sum(1 for n in cpu_users.values() if n > 1),
        groups_shared=sum(1 for users in group_users.values() if len(users) > 1),
        ms_per_guest=1000 * sum(run.seconds) / max(1, len(run.seconds)),
        balance=balance(host, run.placed),
    )


def balance(host: Host, placed: Sequence[Placed]) -> tuple[float | None, ...]:
    """Busiest node / mean node load the first time the used share of the pool reaches each fill."""
    pool = pool_of(host)
    nodes = [n for n in host.nodes if n.cpus & pool]
    out: list[float | None] = [None] * len(FILLS)
    used = CpuSet()
    for p in placed:
        used = used | (p.held & pool)
        loads = [len(n.cpus & used) for n in nodes]
        mean = sum(loads) / len(loads)
        for i, fill in enumerate(FILLS):
            if out[i] is None and len(used) >= fill * len(pool) and mean:
                out[i] = max(loads) / mean
    return tuple(out)


def forced_nodes(host: Host, runs: Sequence[Run]) -> tuple[int, int]:
    """(vmtune's nodes over min on one stream, the part of it at guests for which a kubelet variant had
    the same free CPUs on every node, as a sorted list): at those guests no node held the guest under either
    placer, so no choice made then could have avoided the span; both packers reached that state."""
    pool = pool_of(host)
    spans = Spans(host)
    states: dict[str, dict[int, tuple[int, ...]]] = {}
    overs: dict[int, int] = {}
    for run in runs:
        used = CpuSet()
        seen: dict[int, tuple[int, ...]] = {}
        for p in run.placed:
            seen[p.index] = tuple(sorted((len((n.cpus & pool) - used) for n in host.nodes), reverse=True))
            span = spans.of(p)
            if run.algo == "vmtune" and span.nodes > span.min_nodes:
                overs[p.index] = span.nodes - span.min_nodes
            used = used | p.held
        states[run.algo] = seen
    vmtune = states.get("vmtune", {})
    same = sum(
        over
        for i, over in overs.items()
        if any(seen.get(i) == vmtune[i] for algo, seen in states.items() if algo != "vmtune")
    )
    return sum(overs.values()), same
