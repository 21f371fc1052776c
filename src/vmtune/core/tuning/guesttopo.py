"""What the guest sees: ``<cpu><topology>``, guest NUMA cells, and their memnode binding.

A guest scheduler that believes vCPUs 0 and 1 are separate cores will load both, while on the host they
are SMT siblings sharing one core's execution units: so ``threads=2`` is written only when every
consecutive vCPU pair really sits on one host core's two threads. Likewise a wide guest gets one guest
NUMA cell per host node it spans (VMware's "NUMA clients"), each cell's memory bound to that node with
``<memnode>``, so the guest kernel allocates node-local memory itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from vmtune.core.guest import GuestTopology, MemNode, NumaCell, VcpuPin
from vmtune.core.plan import Note
from vmtune.core.topology.model import Host
from vmtune.cpuset import CpuSet

__all__ = [
    "Cell",
    "GuestLayout",
    "carry_cell_access",
    "guest_layout",
    "threads_per_vcpu_core",
    "topology_note",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Cell:
    node: int
    vcpus: CpuSet
    memory_kib: int


@dataclass(frozen=True, slots=True, kw_only=True)
class GuestLayout:
    pins: tuple[VcpuPin, ...]
    topology: GuestTopology
    cells: tuple[NumaCell, ...]
    memnodes: tuple[MemNode, ...]
    threads: int


def threads_per_vcpu_core(host: Host, cpus: Sequence[int]) -> int:
    """The SMT width the guest may be shown: t when vCPUs come in runs of t siblings of one host core."""
    runs: list[int] = []
    prev_core = None
    for cpu in cpus:
        core = host.core_of(cpu)
        index = core.index if core else -1 - cpu
        if index == prev_core:
            runs[-1] += 1
        else:
            runs.append(1)
            prev_core = index
    if not runs:
        return 1
    width = runs[0]
    # the same host core must not reappear later in the order (its threads would not be adjacent)
    cores = [host.core_of(c) for c in cpus]
    distinct = len({c.index for c in cores if c is not None})
    if width > 1 and all(r == width for r in runs) and distinct == len(runs):
        return width
    return 1


def guest_layout(
    *, host: Host, cpus: Sequence[int], cells: Sequence[Cell], memory_mode: str, numa_cells: bool
) -> GuestLayout:
    """Pins vCPU i -> ``cpus[i]``; cells (in order) hold consecutive or listed vCPUs."""
    pins = tuple(VcpuPin(vcpu=i, cpus=CpuSet([cpu])) for i, cpu in enumerate(cpus))
    threads = threads_per_vcpu_core(host, cpus)
    n = len(cpus)
    counts = [len(c.vcpus) for c in cells]
    per_cell_ok = (
        len(cells) > 1
        and len(set(counts)) == 1
        and counts[0] % threads == 0
        and all(_aligned(c.vcpus, threads) for c in cells)
    )
    if per_cell_ok:
        topology = GuestTopology(sockets=len(cells), cores=counts[0] // threads, threads=threads)
    else:
        topology = GuestTopology(sockets=1, cores=n // threads, threads=threads)
    guest_cells: tuple[NumaCell, ...] = ()
    memnodes: tuple[MemNode, ...] = ()
    if numa_cells:
        guest_cells = tuple(
            NumaCell(id=i, cpus=cell.vcpus, memory_kib=cell.memory_kib) for i, cell in enumerate(cells)
        )
        memnodes = tuple(
            MemNode(cellid=i, mode=memory_mode, nodeset=CpuSet([cell.node])) for i, cell in enumerate(cells)
        )
    return GuestLayout(pins=pins, topology=topology, cells=guest_cells, memnodes=memnodes, threads=threads)


def carry_cell_access(old: Sequence[NumaCell], new: tuple[NumaCell, ...]) -> tuple[NumaCell, ...]:
    """The old cells' ``memAccess`` and ``discard`` on every new cell: a virtiofs or vhost-user guest needs
    shared memory in each cell, so ``shared`` on any old cell wins over the others."""
    if not old:
        return new
    accesses = [c.mem_access for c in old]
    access = "shared" if "shared" in accesses else accesses[0]
    discards = [c.discard for c in old]
    discard = True if True in discards else discards[0]
    return tuple(replace(c, mem_access=access, discard=discard) for c in new)


def _aligned(vcpus: CpuSet, threads: int) -> bool:
    """A cell must be contiguous and start on a thread-group boundary, or a guest core straddles cells."""
    ranges = list(vcpus.ranges())
    return len(ranges) == 1 and ranges[0][0] % threads == 0


def topology_note(sockets: int, cores: int, threads: int, cells: int) -> Note:
    if threads > 1:
        groups = ["-".join(str(v) for v in range(i, i + threads)) for i in range(0, threads * 3, threads)]
        more = "..." if sockets * cores > 3 else ""
        pairs = f"; vCPUs {', '.join(groups[: sockets * cores])}{more} are SMT siblings on the host too"
    else:
        pairs = "; each vCPU on its own host core as far as the guest can tell (threads=1)"
    return Note(
        topic="topology",
        message=f"guest sees {sockets} socket(s) x {cores} core(s) x {threads} thread(s){pairs}"
        + (", one socket per NUMA cell" if sockets == cells > 1 else ""),
        xpath="/domain/cpu/topology",
    )
