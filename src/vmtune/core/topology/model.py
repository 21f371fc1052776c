"""Host topology as plain, frozen data (the readers in adapters/ and xmlmap/ build it).

Vocabulary: a *CPU* is a logical CPU (a PU / hardware thread, the kernel's cpuN); a *core* is a
physical core (its CPUs are thread siblings); a *socket* is a physical package; a *node* is a NUMA node;
a *cache group* is a set of CPUs sharing one data/unified cache of a level in ``CACHE_LEVELS`` (kernel
``shared_cpu_list``). Cache levels are data: a CPU or core maps each level to its group's index in
``Host.caches``, so tracking another level means adding it to ``CACHE_LEVELS`` and to the readers.

Ids as the kernel reports them are kept (node ids may be sparse: 0,1,4,5 or 250-255 for GPU memory;
package ids may be -1 or firmware ids like 8442), while ``Core.index`` and ``Socket.index`` are dense
0-based indices assigned by the readers in CPU-id order so that output is stable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from vmtune.cpuset import CpuSet

CACHE_LEVELS = (2, 3)
"""Cache levels the topology tracks, finest first: the shared data/unified caches placement packs into."""

KIND_LITTLE = 0
"""``Core.kind`` of the smaller cores of a hybrid host (Intel E-cores, Arm LITTLE)."""
KIND_BIG = 1
"""``Core.kind`` of the bigger cores of a hybrid host (Intel P-cores, Arm big)."""

__all__ = [
    "CACHE_LEVELS",
    "KIND_BIG",
    "KIND_LITTLE",
    "CacheGroup",
    "Core",
    "Cpu",
    "Host",
    "HugePages",
    "Node",
    "Socket",
    "Summary",
    "kind_name",
]


def kind_name(kind: int | None) -> str | None:
    """``big`` / ``little`` for a ``Core.kind`` (the words of ``--core-kind``); None for None."""
    return None if kind is None else "big" if kind == KIND_BIG else "little"


@dataclass(frozen=True, slots=True, kw_only=True)
class Cpu:
    id: int
    online: bool = True
    socket: int = 0
    """Dense socket index (``Host.sockets[i]``); -1 when offline / unknown."""
    core: int = -1
    """Dense core index (``Host.cores[i]``); -1 when offline."""
    node: int = 0
    """NUMA node id (kernel id, may be sparse)."""
    package_id: int | None = None
    die_id: int | None = None
    cluster_id: int | None = None
    core_id: int | None = None
    book_id: int | None = None
    drawer_id: int | None = None
    """s390 books and drawers (``topology/book_id``, ``drawer_id``); None elsewhere."""
    capacity: int | None = None
    """``cpu_capacity`` (arm big.LITTLE, Intel hybrid); None when the kernel doesn't say."""
    caches: Mapping[int, int] = field(default_factory=dict, hash=False)
    """Cache level -> index into ``Host.caches`` of this CPU's group; a level without data is absent."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Core:
    index: int
    cpus: CpuSet
    """The core's online threads (SMT siblings)."""
    socket: int
    node: int
    caches: Mapping[int, int] = field(default_factory=dict, hash=False)
    """Cache level -> index into ``Host.caches`` (its first CPU's groups)."""
    capacity: int | None = None
    kind: int | None = None
    """``KIND_BIG`` or ``KIND_LITTLE`` on a hybrid host (``Host.kind_evidence`` says how it is known);
    None where every core is alike."""
    book: int = -1
    drawer: int = -1
    """Dense indices of the core's s390 book and drawer (-1: the host has none)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Socket:
    index: int
    package_id: int | None
    cpus: CpuSet


@dataclass(frozen=True, slots=True, kw_only=True)
class CacheGroup:
    index: int
    level: int
    cpus: CpuSet
    """Online CPUs that share this cache."""
    size_kib: int | None = None
    cache_id: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class HugePages:
    size_kib: int
    total: int
    free: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Node:
    id: int
    cpus: CpuSet
    """Online CPUs of the node (empty for CPU-less nodes: PMEM, GPU memory)."""
    mem_total_kib: int | None = None
    mem_free_kib: int | None = None
    hugepages: tuple[HugePages, ...] = ()
    distances: tuple[tuple[int, int], ...] = ()
    """(other node id, distance) pairs, the node itself included (10 by ACPI SLIT convention)."""

    def distance_to(self, other: int) -> int | None:
        for node_id, dist in self.distances:
            if node_id == other:
                return dist
        return None

    def hugepages_of(self, size_kib: int) -> HugePages | None:
        for hp in self.hugepages:
            if hp.size_kib == size_kib:
                return hp
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Summary:
    """The counts ``vmtune host --json`` puts under ``summary`` (DESIGN.md fixes the keys)."""

    sockets: int
    numa_nodes: int
    cores: int
    threads: int
    threads_per_core: int
    cache_groups: Mapping[int, int] = field(default_factory=dict, hash=False)
    """Cache level -> number of groups, for every level of ``CACHE_LEVELS`` (0 when the source has none)."""

    def counts(self) -> dict[str, int]:
        """The counts under their public JSON names, one ``l<level>_groups`` per tracked cache level."""
        fixed = {
            "sockets": self.sockets,
            "numa_nodes": self.numa_nodes,
            "cores": self.cores,
            "threads": self.threads,
            "threads_per_core": self.threads_per_core,
        }
        return fixed | {f"l{level}_groups": self.cache_groups.get(level, 0) for level in CACHE_LEVELS}


@dataclass(frozen=True, slots=True, kw_only=True)
class Host:
    name: str
    """Where the topology came from (sysfs root, capabilities file, libvirt URI)."""
    cpus: tuple[Cpu, ...]
    """Every CPU the source knows (present), online or not, sorted by id."""
    cores: tuple[Core, ...]
    sockets: tuple[Socket, ...]
    nodes: tuple[Node, ...]
    caches: tuple[CacheGroup, ...] = ()
    """Distinct sharing groups of the ``CACHE_LEVELS`` among online CPUs, sorted by (level, first CPU)."""
    arch: str | None = None
    vendor: str | None = None
    """CPU vendor as libvirt/cpuinfo names it: ``Intel``, ``AMD``, ``ARM``, ... (None when unknown)."""
    model: str | None = None
    isolated: CpuSet = field(default_factory=CpuSet)
    nohz_full: CpuSet = field(default_factory=CpuSet)
    cmdline: str | None = None
    memory_total_kib: int | None = None
    kind_evidence: str | None = None
    """How the big and little cores were told apart (``/sys/devices/cpu_core,cpu_atom``, ``cpu_capacity``
    classes, or the cores' SMT and L2 layout); None on a host whose cores are alike."""
    warnings: tuple[str, ...] = ()
    _by_id: Mapping[int, Cpu] = field(init=False, repr=False, compare=False)
    _nodes_by_id: Mapping[int, Node] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_id", {c.id: c for c in self.cpus})
        object.__setattr__(self, "_nodes_by_id", {n.id: n for n in self.nodes})

    # -- lookups -----------------------------------------------------------------------------------
    @property
    def hybrid(self) -> bool:
        """Big and little cores are told apart here (``Core.kind``)."""
        return self.kind_evidence is not None

    def cpu(self, cpu_id: int) -> Cpu | None:
        return self._by_id.get(cpu_id)

    def node(self, node_id: int) -> Node | None:
        return self._nodes_by_id.get(node_id)

    @property
    def online(self) -> CpuSet:
        return CpuSet(c.id for c in self.cpus if c.online)

    @property
    def offline(self) -> CpuSet:
        return CpuSet(c.id for c in self.cpus if not c.online)

    def core_of(self, cpu_id: int) -> Core | None:
        cpu = self._by_id.get(cpu_id)
        if cpu is None or cpu.core < 0:
            return None
        return self.cores[cpu.core]

    def node_of(self, cpu_id: int) -> int | None:
        cpu = self._by_id.get(cpu_id)
        return None if cpu is None or not cpu.online else cpu.node

    def nodes_of(self, cpus: CpuSet) -> CpuSet:
        """NUMA node ids the given CPUs sit on (as a CpuSet of node ids)."""
        return CpuSet(n.id for n in self.nodes if not n.cpus.isdisjoint(cpus))

    def groups(self, level: int) -> tuple[CacheGroup, ...]:
        return tuple(g for g in self.caches if g.level == level)

    @property
    def cache_levels(self) -> tuple[int, ...]:
        """The cache levels this host has groups of, finest first."""
        return tuple(sorted({g.level for g in self.caches}))

    def cache_group(self, core: Core, level: int) -> CacheGroup | None:
        """The group of ``level`` that ``core`` sits in (None when the source says nothing of it)."""
        index = core.caches.get(level)
        return None if index is None else self.caches[index]

    def siblings(self, cpu_id: int) -> CpuSet:
        core = self.core_of(cpu_id)
        return core.cpus if core else CpuSet()

    def summary(self) -> Summary:
        return Summary(
            sockets=len(self.sockets),
            numa_nodes=len(self.nodes),
            cores=len(self.cores),
            threads=len(self.online),
            threads_per_core=max((len(c.cpus) for c in self.cores), default=0),
            cache_groups={level: len(self.groups(level)) for level in CACHE_LEVELS},
        )
