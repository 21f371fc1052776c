"""Steps 4 and 5 of ``plan_guest``: what the guest sees (topology, NUMA cells, vCPU pins:
``plan_layout``), ``<vcpu cpuset>`` (``vcpu_cpuset``) and the memory binding (``plan_numatune``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from vmtune.core.guest import GuestSpec, MemNode
from vmtune.core.intent.model import Resolved, ThreadPolicy
from vmtune.core.ledger.pool import Ledger
from vmtune.core.placement.numa import Placement, cell_distances
from vmtune.core.plan import Level, Note, NumaTunePlan
from vmtune.core.planning.job import Job, seen_topology
from vmtune.core.topology.model import Host
from vmtune.core.tuning.guesttopo import (
    Cell,
    GuestLayout,
    carry_cell_access,
    guest_layout,
    hidden_note,
    threads_per_vcpu_core,
    topology_note,
)
from vmtune.core.tuning.memmode import at_home, keep_user_binding, single_node_preferred, user_binding
from vmtune.cpuset import CpuSet
from vmtune.errors import InputError

__all__ = ["check_cell_users", "check_kept_topology", "plan_layout", "plan_numatune", "vcpu_cpuset"]


def plan_layout(job: Job, placement: Placement, numa_off: bool, notes: list[Note]) -> GuestLayout:
    """The topology, NUMA cells and vCPU pins the guest sees."""
    cells, numa_cells = _cells(job.guest, placement, numa_off)
    mode = job.resolved.memory_mode.value
    layout = guest_layout(host=job.host, cpus=placement.cpus, cells=cells, memory_mode=mode,
                          numa_cells=numa_cells and not job.keep)  # fmt: skip
    if job.keep:
        # a guest vmtune shaped before keeps what it sees; only the pins follow the placement
        check_kept_topology(job, placement.cpus, notes)
        return replace(layout, topology=seen_topology(job.guest))
    if layout.hidden:
        notes.append(hidden_note(job.host, placement.cpus))
    check_cell_users(job.guest, len(layout.cells))
    seen = carry_cell_access(job.guest.numa_cells, layout.cells)
    distances = cell_distances(job.host, [s.node for s in placement.shares]) if len(seen) > 1 else ()
    if len(distances) == len(seen):
        seen = tuple(replace(c, distances=d) for c, d in zip(seen, distances, strict=True))
    layout = replace(layout, cells=seen)
    notes.append(topology_note(layout.topology.sockets, layout.topology.cores, layout.threads, len(cells)))
    return layout


def check_kept_topology(job: Job, cpus: Sequence[int], notes: list[Note]) -> None:
    """Warn when the pins cannot match the topology the guest keeps (VT109 will say so too)."""
    kept = seen_topology(job.guest).threads
    if threads_per_vcpu_core(job.host, cpus) != kept:
        say = (
            f"too few whole cores free to pin as the guest's topology ({kept} thread(s) per core, kept) "
            "says: some vCPUs sit on host cores it cannot show"
        )
        notes.append(Note(topic="topology", level=Level.WARNING, message=say, xpath="/domain/cpu/topology"))


def check_cell_users(guest: GuestSpec, cells: int) -> None:
    """What is bound to a guest cell (a memory device, a PCI expander bus, a hugepage size) must still have
    its cell in the new shape of ``cells`` cells: libvirt refuses a cell the domain does not have."""
    users = [
        (dev.node, f"a <memory model='{dev.model}'> device targets guest cell {dev.node}", "move it")
        for dev in guest.memory_devices
        if dev.node is not None
    ]
    users += [(cell, f"{where}/target/node names guest cell {cell}", "move the controller")
              for where, cell in guest.controller_cells]  # fmt: skip
    if guest.hugepage_cells:
        names = f"/domain/memoryBacking/hugepages/page/@nodeset names guest cell(s) {guest.hugepage_cells}"
        users.append((guest.hugepage_cells.last(), names, "change the nodesets"))
    for cell, what, remedy in users:
        if cell >= max(cells, 1):
            raise InputError(
                f"{guest.source}: {what}, the new shape has {cells} cell(s); "
                f"keep the shape (no --reshape) or {remedy}"
            )


def vcpu_cpuset(
    host: Host, resolved: Resolved, ledger: Ledger, cpus: Sequence[int], emulator: CpuSet
) -> CpuSet:
    """``<vcpu cpuset>``: the guest's CPUs, and under ``isolate`` the idle siblings it keeps empty.

    The idle siblings belong to this guest: listing them makes every ledger (ours, ``vmtune host --map``,
    a later plan of another guest) see those cores as taken, not half free.
    """
    guest_cpus = CpuSet(cpus)
    if resolved.thread_policy is not ThreadPolicy.ISOLATE:
        return guest_cpus
    idle = CpuSet().union(*(host.siblings(c) for c in cpus)) & ledger.free
    return guest_cpus | (idle - emulator)


def plan_numatune(
    job: Job, nodes: Sequence[int], memnodes: tuple[MemNode, ...], numa_off: bool, notes: list[Note]
) -> NumaTunePlan | None:
    """Memory bound to the vCPUs' nodes, one ``<memnode>`` per guest cell; none with ``--numa off``; the
    guest's own interleave/preferred/restrictive binding kept (``memmode.user_binding``)."""
    if numa_off:
        notes.append(Note(topic="memory", message="--numa off: memory placement left to the host kernel"))
        return None
    kept = user_binding(job.guest, job.intent, job.host)
    if kept is not None:
        fresh = NumaTunePlan(mode=kept[0], nodeset=CpuSet(nodes), memnodes=memnodes)
        return single_node_preferred(keep_user_binding(fresh, kept, notes), notes)
    mode = job.resolved.memory_mode.value
    plan = at_home(NumaTunePlan(mode=mode, nodeset=CpuSet(nodes), memnodes=memnodes), job.ledger.memory.homes,
                   notes)  # fmt: skip
    notes.append(
        Note(
            topic="memory",
            message=f"memory bound to node(s) {plan.nodeset} with mode {mode}"
            + (", one <memnode> per guest cell" if memnodes else ""),
            xpath="/domain/numatune",
        )
    )
    return single_node_preferred(plan, notes)


def _cells(guest: GuestSpec, placement: Placement, numa_off: bool) -> tuple[list[Cell], bool]:
    order = placement.cpus
    cells: list[Cell] = []
    for share in placement.shares:
        vcpus = CpuSet(i for i, cpu in enumerate(order) if cpu in share.pick.cpu_set)
        cells.append(Cell(node=share.node, vcpus=vcpus, memory_kib=share.memory_kib))
    wanted = not numa_off and (len(cells) > 1 or bool(guest.numa_cells))
    if wanted and guest.memory_kib <= 0:
        wanted = False
    return cells, wanted
