"""kubelet's static CPU manager, written in Python from its Go source, as the placement benchmark's referee.

Sources read (kubernetes ``pkg/kubelet/cm/``): ``cpumanager/cpu_assignment.go`` (``takeByTopologyNUMAPacked``
and the ``cpuAccumulator``), ``cpumanager/topology/topology.go`` (``CPUTopology``, ``Discover``),
``cpumanager/policy_static.go`` (``Allocate``, ``allocateCPUs``, ``generateCPUTopologyHints``, the
``full-pcpus-only`` check) and ``topologymanager/policy.go`` + ``bitmask/bitmask.go`` (how the best hint is
chosen). Nothing is copied; the steps are numbered as kubelet numbers them.

The configuration modelled: ``cpuManagerPolicy: static`` with ``full-pcpus-only`` (whole cores, like vmtune's
thread policy ``require``), ``topologyManagerPolicy: best-effort`` (the NUMA level: a request that fits in
one node's free CPUs is taken from that node; ``max-allowable-numa-nodes`` raised on hosts with more than 8
nodes), ``reservedSystemCPUs`` = the CPUs vmtune reserves, and optionally
``prefer-align-cpus-by-uncorecache``. One guest is one Guaranteed pod with one container.

Two kubelet details the port keeps on purpose, because they change its answers on real hosts:

* ``CPUsPerCore()`` is ``NumCPUs / NumCores`` in integer division over the *online* CPUs, so one offline
  SMT sibling (or a hybrid host's single-thread E-cores) makes it 1: ``full-pcpus-only`` then admits any
  size and no two-thread core counts as "free" any more;
* the uncore cache is the L3 (cadvisor's ``UncoreCaches``); without an L3 it is the socket.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from itertools import combinations

from vmtune.core.topology.model import Host

__all__ = [
    "Accumulator",
    "CpuInfo",
    "KubeTopology",
    "Kubelet",
    "best_hint",
    "take_by_topology_numa_packed",
    "topology_of",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class CpuInfo:
    """topology.CPUInfo: what kubelet knows of one online CPU."""

    core: int
    """The lowest CPU id of the core's threads (``getUniqueCoreID``)."""
    socket: int
    node: int
    uncore: int


@dataclass(frozen=True, slots=True, kw_only=True)
class KubeTopology:
    """topology.CPUTopology: the counts kubelet derives its per-core/socket/uncore sizes from."""

    cpus: Mapping[int, CpuInfo]
    num_cores: int
    num_sockets: int
    num_uncore: int = field(default=0)

    @property
    def num_cpus(self) -> int:
        return len(self.cpus)

    @property
    def num_nodes(self) -> int:
        return len({i.node for i in self.cpus.values()})

    def cpus_per_core(self) -> int:
        return self.num_cpus // self.num_cores if self.num_cores else 0

    def cpus_per_socket(self) -> int:
        return self.num_cpus // self.num_sockets if self.num_sockets else 0

    def cpus_per_uncore(self) -> int:
        return self.num_cpus // self.num_uncore if self.num_uncore else 0

    def members(self, attr: str) -> dict[int, frozenset[int]]:
        """Every id of ``attr`` (core, socket, node, uncore) -> its CPUs."""
        out: dict[int, set[int]] = {}
        for cpu, info in self.cpus.items():
            out.setdefault(getattr(info, attr), set()).add(cpu)
        return {k: frozenset(v) for k, v in out.items()}


def topology_of(host: Host) -> KubeTopology:
    """What ``topology.Discover`` builds from cadvisor's view of ``host``: online CPUs only; a core's id is
    its lowest CPU; the uncore cache is the core's L3 group, or its socket when the host has no L3."""
    cpus: dict[int, CpuInfo] = {}
    for core in host.cores:
        if not core.cpus:
            continue
        l3 = core.caches.get(3)
        socket = host.sockets[core.socket].package_id
        socket_id = core.socket if socket is None or socket < 0 else socket
        # cadvisor's cache ids and socket ids never collide here: L3 keys are offset past every socket id
        uncore = socket_id if l3 is None else 1_000_000 + l3
        for cpu in core.cpus:
            cpus[cpu] = CpuInfo(core=core.cpus.first(), socket=socket_id, node=core.node, uncore=uncore)
    return KubeTopology(
        cpus=cpus,
        num_cores=sum(1 for c in host.cores if c.cpus),
        num_sockets=len({i.socket for i in cpus.values()}),
        num_uncore=len({i.uncore for i in cpus.values()}),
    )


class Accumulator:
    """cpuAccumulator: the free CPUs (``details``), what is taken so far and how many are still needed.

    Counts of free CPUs per core/socket/node/uncore are kept up to date so that each sort is one pass; the
    orders are exactly kubelet's (ascending free count, then id)."""

    def __init__(self, topo: KubeTopology, available: Iterable[int], n: int) -> None:
        self.topo = topo
        self.free = {c for c in available if c in topo.cpus}
        self.needed = n
        self.result: set[int] = set()
        self.count: dict[str, Counter[int]] = {
            a: Counter(getattr(topo.cpus[c], a) for c in self.free)
            for a in ("core", "socket", "node", "uncore")
        }
        self.all = {a: topo.members(a) for a in ("core", "socket", "node", "uncore")}
        # NUMA nodes above sockets (one node holds one or more sockets) -> nodes are the first level
        self.numa_first = topo.num_sockets >= topo.num_nodes

    # -- state ---------------------------------------------------------------------------------------------
    def take(self, cpus: Iterable[int]) -> None:
        cpus = set(cpus)
        self.result |= cpus
        for cpu in cpus & self.free:
            info = self.topo.cpus[cpu]
            for attr in self.count:
                self.count[attr][getattr(info, attr)] -= 1
        self.free -= self.result
        self.needed -= len(cpus)  # kubelet subtracts the set's size, taken before or not

    def needs_at_least(self, n: int) -> bool:
        return self.needed >= n

    def satisfied(self) -> bool:
        return self.needed < 1

    def failed(self) -> bool:
        return self.needed > len(self.free)

    # -- sorting (cpuAccumulator.sort: ascending free CPUs, then id) ----------------------------------------
    def _sorted(self, attr: str, ids: Iterable[int]) -> list[int]:
        counts = self.count[attr]
        return sorted(set(ids), key=lambda i: (counts[i], i))

    def _available(self, attr: str, within: str | None = None, key: int | None = None) -> set[int]:
        """Ids of ``attr`` that hold a free CPU (inside ``within`` == ``key`` when given)."""
        cpus = self.free if within is None or key is None else self.all[within][key] & self.free
        return {getattr(self.topo.cpus[cpu], attr) for cpu in cpus}

    def sort_nodes(self) -> list[int]:
        if self.numa_first:
            return self._sorted("node", self._available("node"))
        return [
            n for s in self.sort_sockets() for n in self._sorted("node", self._available("node", "socket", s))
        ]

    def sort_sockets(self) -> list[int]:
        if not self.numa_first:
            return self._sorted("socket", self._available("socket"))
        return [
            s for n in self.sort_nodes() for s in self._sorted("socket", self._available("socket", "node", n))
        ]

    def sort_cores(self) -> list[int]:
        outer, attr = (self.sort_sockets(), "socket") if self.numa_first else (self.sort_nodes(), "node")
        return [c for o in outer for c in self._sorted("core", self._available("core", attr, o))]

    def sort_uncores(self) -> list[int]:
        return [
            u for n in self.sort_nodes() for u in self._sorted("uncore", self._available("uncore", "node", n))
        ]

    def sort_cpus_packed(self) -> list[int]:
        by_core: dict[int, list[int]] = {}
        for cpu in sorted(self.free):
            by_core.setdefault(self.topo.cpus[cpu].core, []).append(cpu)
        return [cpu for core in self.sort_cores() for cpu in by_core[core]]

    # -- "free" (every CPU of it available) ----------------------------------------------------------------
    def node_free(self, node: int) -> bool:
        return self.count["node"][node] == len(self.all["node"][node])

    def socket_free(self, socket: int) -> bool:
        return self.count["socket"][socket] == self.topo.cpus_per_socket()

    def uncore_free(self, uncore: int) -> bool:
        return self.count["uncore"][uncore] == len(self.all["uncore"][uncore])

    def core_free(self, core: int) -> bool:
        return self.count["core"][core] == self.topo.cpus_per_core()

    def free_of(self, attr: str) -> list[int]:
        """freeNUMANodes / freeSockets / freeCores: the wholly free ones, in their sort order."""
        order, is_free = {
            "node": (self.sort_nodes, self.node_free),
            "socket": (self.sort_sockets, self.socket_free),
            "core": (self.sort_cores, self.core_free),
        }[attr]
        return [k for k in order() if is_free(k)]

    # -- the take steps ------------------------------------------------------------------------------------
    def take_full(self, attr: str, order: list[int], is_free: Callable[[int], bool]) -> None:
        """takeFullNUMANodes / takeFullSockets / takeFullUncore / takeFullCores: the free ones in ``order``
        (computed once, as the Go loop's range is), each taken whole while at least its size is needed."""
        for key in [k for k in order if is_free(k)]:
            cpus = self.all[attr][key]
            if not self.needs_at_least(len(cpus)):
                continue
            self.take(cpus)

    def take_partial_uncore(self, uncore: int) -> None:
        per_core = self.topo.cpus_per_core()
        cores_needed = (self.needed + per_core - 1) // per_core
        cores = sorted(self._available("core", "uncore", uncore))[:cores_needed]
        cpus = sorted(c for c in self.free if self.topo.cpus[c].core in set(cores))
        if self.needed % 2 and per_core > 1 and len(cpus) > self.needed:
            cpus = cpus[:-1]  # an odd request leaves the last thread of the last core
        if self.needed == len(cpus):
            self.take(cpus)

    def take_uncore_cache(self) -> None:
        per_uncore = self.topo.cpus_per_uncore()
        for uncore in self.sort_uncores():
            if self.needs_at_least(per_uncore):
                self.take_full("uncore", self.sort_uncores(), self.uncore_free)
            if self.satisfied():
                return
            self.take_partial_uncore(uncore)
            if self.satisfied():
                return

    def take_remaining(self) -> None:
        for cpu in self.sort_cpus_packed():
            self.take((cpu,))
            if self.satisfied():
                return


def take_by_topology_numa_packed(
    topo: KubeTopology, available: Iterable[int], n: int, *, uncore: bool = False
) -> frozenset[int] | None:
    """takeByTopologyNUMAPacked (packed CPU sorting); None where kubelet returns an error."""
    acc = Accumulator(topo, available, n)
    if acc.satisfied():
        return frozenset(acc.result)
    if acc.failed():
        return None
    # 1. whole NUMA nodes and sockets, the larger level first
    levels = [("node", acc.sort_nodes, acc.node_free), ("socket", acc.sort_sockets, acc.socket_free)]
    for attr, order, is_free in levels if acc.numa_first else levels[::-1]:
        acc.take_full(attr, order(), is_free)
        if acc.satisfied():
            return frozenset(acc.result)
    # 2. prefer-align-cpus-by-uncorecache: whole uncore caches, then the fewest uncore caches
    if uncore:
        acc.take_uncore_cache()
        if acc.satisfied():
            return frozenset(acc.result)
    # 3. whole cores
    acc.take_full("core", acc.sort_cores(), acc.core_free)
    if acc.satisfied():
        return frozenset(acc.result)
    # 4. single threads, partly used cores first
    acc.take_remaining()
    return frozenset(acc.result) if acc.satisfied() else None


def _mask(nodes: Iterable[int]) -> int:
    return sum(1 << n for n in nodes)


def best_hint(topo: KubeTopology, available: Iterable[int], n: int) -> tuple[int, ...] | None:
    """The NUMA affinity the topology manager settles on for a CPU-only container.

    ``generateCPUTopologyHints`` lists every node mask whose available CPUs hold ``n``, preferred when it
    has as few nodes as the fewest that could ever hold ``n`` (all CPUs counted). With one hint provider
    the merge keeps a preferred hint over a non-preferred one, then the narrower mask: fewer nodes, then
    the smaller mask value (``bitmask.IsNarrowerThan``); so the winner is always the fewest-node feasible
    mask of the smallest value. None: no mask holds ``n`` (kubelet falls back to every node)."""
    per_node = Counter(topo.cpus[c].node for c in available if c in topo.cpus)
    nodes = sorted({i.node for i in topo.cpus.values()})
    for k in range(1, len(nodes) + 1):
        if sum(sorted(per_node.values(), reverse=True)[:k]) < n:
            continue
        feasible = (c for c in combinations(nodes, k) if sum(per_node[x] for x in c) >= n)
        best = min(feasible, key=_mask, default=None)
        if best is not None:
            return best
    return None


@dataclass
class Kubelet:
    """One node's CPU manager state: the static policy's default (shared) pool and the reserved CPUs."""

    topo: KubeTopology
    reserved: frozenset[int]
    uncore: bool = False
    full_pcpus_only: bool = True
    default: set[int] = field(init=False)
    reserved_physical: frozenset[int] = field(init=False)

    def __post_init__(self) -> None:
        self.default = set(self.topo.cpus)
        cores = {self.topo.cpus[c].core for c in self.reserved if c in self.topo.cpus}
        self.reserved_physical = frozenset(c for c, i in self.topo.cpus.items() if i.core in cores)

    def allocate(self, n: int) -> frozenset[int] | None:
        """staticPolicy.Allocate for a container asking ``n`` CPUs; None where admission fails."""
        if self.full_pcpus_only:
            per_core = self.topo.cpus_per_core()
            if n % per_core:
                return None  # SMTAlignmentError: not a multiple of the CPUs per core
            if n > len(self.default - self.reserved_physical):
                return None  # SMTAlignmentError: not enough free physical CPUs
        available = self.default - self.reserved
        hint = best_hint(self.topo, available, n)
        result: frozenset[int] = frozenset()
        if hint is not None:
            aligned = {c for c in available if self.topo.cpus[c].node in hint}
            taken = take_by_topology_numa_packed(self.topo, aligned, min(n, len(aligned)), uncore=self.uncore)
            if taken is None:
                return None
            result = taken
        rest = take_by_topology_numa_packed(
            self.topo, available - result, n - len(result), uncore=self.uncore
        )
        if rest is None:
            return None
        result = result | rest
        self.default -= result
        return result
