"""Bind the NUMA cells a guest already has to this host's nodes, without changing what the guest sees.

A guest's cells are part of its ABI (libvirt refuses a migration or restore that changes them), so a guest
that has cells keeps them and only their host binding is chosen, after VMware's vNUMA practice:

1. a free node with room per cell: each cell on its own node, the next cell on the node closest (ACPI SLIT)
   to those already chosen;
2. nodes too small for a cell: that cell's vCPUs and memory span the fewest closest nodes (a note);
3. otherwise the cells share nodes, bound best effort (a warning).

None when not even (3) holds the vCPUs and memory: the caller refuses rather than reshape the guest.
The current pins are kept when they are as good (no cell on more nodes, no more sharing), so a re-plan
on the same host changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from vmtune.core.guest import GuestSpec
from vmtune.core.intent.model import CacheFit, Fit, Numa, ThreadPolicy
from vmtune.core.ledger.pool import Tenant
from vmtune.core.placement.numa import Placement, distance, memory_shortfall, place
from vmtune.core.plan import Level, Note
from vmtune.core.topology.model import Core, Host
from vmtune.cpuset import CpuSet
from vmtune.units import fmt_kib_brief

__all__ = ["CellAsk", "CellBinding", "CellJob", "CellMap", "cell_asks", "map_cells"]

FRESH_ON_OWN_NODE, FRESH_SPANNING, FRESH_SHARED, CURRENT = 1, 2, 3, 0


@dataclass(frozen=True, slots=True, kw_only=True)
class CellAsk:
    cell: int | None
    """The guest cell id; None for vCPUs no cell lists."""
    vcpus: tuple[int, ...]
    memory_kib: int
    """The cell's memory and the memory devices plugged into it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CellBinding:
    ask: CellAsk
    cpus: tuple[int, ...]
    """Host CPU of each of ``ask.vcpus``, in order."""
    nodes: CpuSet
    """Host nodes the cell's memory is bound to."""
    case: int
    """1-3: the rule that placed it; 0: the current pins, kept."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CellMap:
    bindings: tuple[CellBinding, ...]
    notes: tuple[Note, ...]

    @property
    def pins(self) -> dict[int, int]:
        """Host CPU of each vCPU."""
        return {v: c for b in self.bindings for v, c in zip(b.ask.vcpus, b.cpus, strict=True)}

    @property
    def nodes(self) -> CpuSet:
        return CpuSet().union(*(b.nodes for b in self.bindings))


@dataclass(frozen=True, slots=True, kw_only=True)
class CellJob:
    """What every placement of one mapping reads."""

    host: Host
    cores: Sequence[Core]
    policy: ThreadPolicy
    hugepage_kib: int | None
    tenants: Sequence[Tenant]
    latency: bool
    pci_node: int | None
    numa_fit: Fit = Fit.PACK
    cache_fit: CacheFit = CacheFit.PACK


def cell_asks(guest: GuestSpec) -> tuple[CellAsk, ...]:
    """The guest's cells in id order, then the vCPUs no cell lists (libvirt before 9 allowed those)."""
    listed: set[int] = set()
    asks: list[CellAsk] = []
    for cell in sorted(guest.numa_cells, key=lambda c: c.id):
        vcpus = tuple(v for v in cell.cpus if v < guest.vcpus and v not in listed)
        listed.update(vcpus)
        plugged = sum(d.size_kib for d in guest.memory_devices if d.node == cell.id)
        asks.append(CellAsk(cell=cell.id, vcpus=vcpus, memory_kib=cell.memory_kib + plugged))
    rest = tuple(v for v in range(guest.vcpus) if v not in listed)
    if rest:
        asks.append(CellAsk(cell=None, vcpus=rest, memory_kib=0))
    return tuple(asks)


def map_cells(
    job: CellJob, asks: Sequence[CellAsk], free: CpuSet, current: Mapping[int, int]
) -> CellMap | None:
    """Each cell's host CPUs and nodes (rules 1-3 above); None when the host cannot hold the guest."""
    fresh = _fresh(job, asks, free)
    if fresh is None:
        return None
    return _current(job, fresh, free, current) or fresh


def _fresh(job: CellJob, asks: Sequence[CellAsk], free: CpuSet) -> CellMap | None:
    bindings: list[CellBinding] = []
    used: list[int] = []
    for ask in asks:
        if not ask.vcpus:
            continue
        case, cpus = FRESH_ON_OWN_NODE, _on_own_node(job, ask, free, used)
        if cpus is None:
            spare = [c for c in job.cores if c.node not in used]
            case, cpus = FRESH_SPANNING, _place(job, ask, free, spare, Numa())
        if cpus is None:
            case, cpus = FRESH_SHARED, _place(job, ask, free, job.cores, Numa())
        if cpus is None:
            return None
        nodes = CpuSet(job.host.nodes_of(CpuSet(cpus)))
        bindings.append(CellBinding(ask=ask, cpus=cpus, nodes=nodes, case=case))
        used.extend(n for n in nodes if n not in used)
        free = free - _taken(job, cpus)
    return CellMap(bindings=_with_memory_only(asks, bindings), notes=_notes(job, bindings))


def _on_own_node(job: CellJob, ask: CellAsk, free: CpuSet, used: Sequence[int]) -> tuple[int, ...] | None:
    """Rule 1: one node no other cell uses; the first cell where a lone guest would go, then closest."""
    spare = [c for c in job.cores if c.node not in used]
    if not used:
        return _place(job, ask, free, spare, Numa(nodes=1))
    near = sorted({c.node for c in spare}, key=lambda n: (sum(distance(job.host, n, u) for u in used), n))
    for node in near:
        cpus = _place(job, ask, free, [c for c in spare if c.node == node], Numa(nodes=1))
        if cpus is not None:
            return cpus
    return None


def _place(
    job: CellJob, ask: CellAsk, free: CpuSet, cores: Sequence[Core], numa: Numa
) -> tuple[int, ...] | None:
    if not cores:
        return None
    found = place(host=job.host, free=free, cores=cores, vcpus=len(ask.vcpus), policy=job.policy, numa=numa,
                  memory_kib=ask.memory_kib, hugepage_kib=job.hugepage_kib, tenants=job.tenants,
                  latency=job.latency, pci_node=job.pci_node, numa_fit=job.numa_fit,
                  cache_fit=job.cache_fit)  # fmt: skip
    return found.cpus if isinstance(found, Placement) else None


def _taken(job: CellJob, cpus: Sequence[int]) -> CpuSet:
    """What a placed cell takes from the next: under ``isolate`` its cores' idle siblings too."""
    if job.policy is not ThreadPolicy.ISOLATE:
        return CpuSet(cpus)
    return CpuSet(cpus).union(*(job.host.siblings(c) for c in cpus))


def _with_memory_only(asks: Sequence[CellAsk], bindings: Sequence[CellBinding]) -> tuple[CellBinding, ...]:
    """A cell without vCPUs (memory only) is bound to every node the guest's vCPUs use."""
    everywhere = CpuSet().union(*(b.nodes for b in bindings))
    extra = [CellBinding(ask=a, cpus=(), nodes=everywhere, case=FRESH_SHARED) for a in asks if not a.vcpus]
    return (*bindings, *extra)


def _current(job: CellJob, fresh: CellMap, free: CpuSet, current: Mapping[int, int]) -> CellMap | None:
    """The current pins when every cell is on whole free cores, on no more nodes than a fresh mapping
    gives it and sharing no more nodes with other cells; memory must still fit a lone node."""
    allowed = CpuSet().union(*(c.cpus for c in job.cores)) & free
    kept: list[CellBinding] = []
    for binding in fresh.bindings:
        cpus = tuple(current.get(v, -1) for v in binding.ask.vcpus)
        mine = CpuSet(c for c in cpus if c >= 0)
        cores = [job.host.core_of(c) for c in cpus]
        if len(mine) != len(cpus) or not mine.issubset(allowed):
            return None
        if any(core is None or not core.cpus.issubset(free) for core in cores):
            return None
        if job.policy is ThreadPolicy.ISOLATE and len({c.index for c in cores if c}) != len(cpus):
            return None
        nodes = CpuSet(job.host.nodes_of(mine)) if cpus else binding.nodes
        if len(nodes) > len(binding.nodes):
            return None
        lone = job.host.node(nodes.first()) if len(nodes) == 1 else None
        if lone is not None and memory_shortfall(lone, binding.ask.memory_kib, job.hugepage_kib):
            return None
        kept.append(replace(binding, cpus=cpus, nodes=nodes, case=CURRENT))
    if _sharing(kept) > _sharing(fresh.bindings):
        return None
    note = Note(topic="numa", message="current pins already hold each guest NUMA cell well: kept as they are")
    return CellMap(bindings=tuple(kept), notes=(note,))


def _sharing(bindings: Sequence[CellBinding]) -> int:
    """Node slots used by more than one cell."""
    seen = [n for b in bindings if b.cpus for n in b.nodes]
    return len(seen) - len(set(seen))


def _notes(job: CellJob, bindings: Sequence[CellBinding]) -> tuple[Note, ...]:
    def name(b: CellBinding) -> str:
        cell = "vCPUs outside every cell" if b.ask.cell is None else f"guest cell {b.ask.cell}"
        mem = f", {fmt_kib_brief(b.ask.memory_kib)}" if b.ask.memory_kib else ""
        return f"{cell} ({len(b.ask.vcpus)} vCPUs{mem})"

    notes = [
        Note(
            topic="numa",
            message="the guest's NUMA cells are kept (--reshape for a new shape): "
            + ", ".join(f"{name(b)} -> node(s) {b.nodes}" for b in bindings),
            xpath="/domain/numatune",
        )
    ]
    for b in bindings:
        if b.case == FRESH_SPANNING:
            why, level = f"is larger than any free node of this host: it spans nodes {b.nodes}", Level.INFO
        elif b.case == FRESH_SHARED:
            why, level = f"shares node(s) {b.nodes} with another cell (no free node per cell)", Level.WARNING
        else:
            continue
        notes.append(Note(topic="numa", level=level, message=f"{name(b)} {why}; bound best effort"))
    return tuple(notes)
