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
from vmtune.core.plan import Level, Note
from vmtune.core.topology.model import Host
from vmtune.cpuset import CpuSet

__all__ = [
    "Cell",
    "GuestLayout",
    "carry_cell_access",
    "guest_layout",
    "hidden_note",
    "round_to_cores",
    "slots_note",
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
    hidden: bool = False
    """No topology tells the truth about these pins (``threads_per_vcpu_core`` is None): threads=1."""


def threads_per_vcpu_core(host: Host, cpus: Sequence[int]) -> int | None:
    """The one SMT width a guest topology may show for vCPU i pinned to ``cpus[i]``, None when none is true.

    QEMU numbers vCPUs threads innermost, so ``threads=t`` tells the guest that vCPUs ``k*t .. k*t+t-1``
    share a core and no others do. That is true exactly when every host core under the guest holds the
    same number t of its vCPUs, as one such aligned run. t=1 means no two vCPUs share a host core. None
    (an uneven mix, e.g. an odd vCPU count on 2-thread cores as 2+2+1) means every topology would lie
    about some siblings. The planner shapes guests by this answer and VT109 judges them by it.
    """
    runs: dict[int, list[int]] = {}
    for vcpu, cpu in enumerate(cpus):
        core = host.core_of(cpu)
        runs.setdefault(core.index if core is not None else -1 - cpu, []).append(vcpu)
    if not runs:
        return 1
    widths = {len(vcpus) for vcpus in runs.values()}
    if len(widths) != 1:
        return None
    width = widths.pop()
    aligned = all(v == list(range(v[0], v[0] + width)) and v[0] % width == 0 for v in runs.values())
    return width if aligned else None


def round_to_cores(vcpus: int, width: int) -> int:
    """The vCPU slots (``<vcpu>`` maximum) that let a fresh guest of ``vcpus`` sit on whole cores of
    ``width`` threads with a topology that tells the truth: ``vcpus`` itself when it already fills whole
    cores (or is 1: a lone vCPU on its core is the truth at threads=1), else rounded up to a multiple of
    ``width``, the extra vCPUs offline (``current`` stays ``vcpus``).

    libvirt requires sockets*dies*cores*threads == the maximum vCPUs, so 3 vCPUs cannot be shown as
    2-thread cores, and pinning them 2+1 under threads=1 tells the guest that two siblings are separate
    cores (its scheduler then loads both while a whole core idles; Nova's ``_threads`` does exactly this).
    Spreading them one per core is true but takes 3 cores where 2 hold them, and more cache groups. With a
    4th, offline vCPU the guest sees 1 socket x 2 cores x 2 threads: vCPUs 0-1 siblings, vCPU 2 alone
    on a core whose other thread (vCPU 3) is offline, which is exactly what the host does. The slot's host
    CPU is the lone vCPU's idle sibling, held for it, so no other guest splits that core either; hot-adding
    vCPU 3 later lands on that sibling, still true.
    """
    if vcpus <= 1 or width <= 1 or vcpus % width == 0:
        return vcpus
    return -(-vcpus // width) * width


def slots_note(vcpus: int, slots: int, threads: int) -> Note:
    offline = CpuSet(range(vcpus, slots))
    return Note(
        topic="topology",
        message=f"{vcpus} vCPUs do not fill whole {threads}-thread cores: <vcpu> maximum raised to {slots} "
        f"with current={vcpus}, vCPU(s) {offline} offline on the idle sibling(s) they hold, so the "
        "topology shows which vCPUs share a host core and which sit alone (hot-adding them stays true)",
        xpath="/domain/vcpu",
    )


def hidden_note(host: Host, cpus: Sequence[int]) -> Note:
    """No topology is true for these pins (an uneven mix of shared and lone cores): say which vCPUs the
    guest will wrongly take for separate cores."""
    by_core: dict[int, list[int]] = {}
    for vcpu, cpu in enumerate(cpus):
        core = host.core_of(cpu)
        if core is not None:
            by_core.setdefault(core.index, []).append(vcpu)
    shared = CpuSet(v for vs in by_core.values() if len(vs) > 1 for v in vs)
    return Note(
        topic="topology",
        level=Level.WARNING,
        message=f"vCPUs {shared} share host cores unevenly (too few whole cores free): no guest topology "
        "can show it, so the guest takes them for separate cores (threads=1)",
        xpath="/domain/cpu/topology",
    )


def guest_layout(
    *, host: Host, cpus: Sequence[int], cells: Sequence[Cell], memory_mode: str, numa_cells: bool
) -> GuestLayout:
    """Pins vCPU i -> ``cpus[i]``; cells (in order) hold consecutive or listed vCPUs."""
    pins = tuple(VcpuPin(vcpu=i, cpus=CpuSet([cpu])) for i, cpu in enumerate(cpus))
    width = threads_per_vcpu_core(host, cpus)
    threads = width or 1
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
    return GuestLayout(pins=pins, topology=topology, cells=guest_cells, memnodes=memnodes, threads=threads,
                       hidden=width is None)  # fmt: skip


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
