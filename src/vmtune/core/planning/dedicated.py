"""The dedicated plans: a host CPU per vCPU with a fresh shape (``plan_dedicated``), or the guest's own
NUMA cells bound to host nodes (``plan_kept_cells``)."""

from __future__ import annotations

from vmtune.core.guest import MemNode, VcpuPin
from vmtune.core.ledger.tenant import as_planned, node_shares
from vmtune.core.placement.cells import CellJob, CellMap, cell_asks, map_cells
from vmtune.core.placement.emulator import place_emulator
from vmtune.core.placement.explain import cache_notes, cpu_note, numa_note
from vmtune.core.placement.numa import ANY_NODE
from vmtune.core.plan import CpuPlan, Note, Plan
from vmtune.core.planning.job import Job, merge_tuning, seen_topology
from vmtune.core.planning.layout import check_kept_topology, plan_layout, plan_numatune, vcpu_cpuset
from vmtune.core.planning.vcpus import cores_for_kind, device_node, hugepage_size, place_truthfully
from vmtune.core.tuning.devices import device_tuning
from vmtune.core.tuning.memmode import home_shares
from vmtune.cpuset import CpuSet
from vmtune.errors import InfeasibleError

__all__ = ["plan_dedicated", "plan_kept_cells"]


def plan_dedicated(job: Job, notes: list[Note], *, tune: bool = True) -> Plan:
    """A host CPU per vCPU, the guest's shape fresh from the placement (kept with ``job.keep``); without
    ``tune`` the placement only (a mixed guest's dedicated part, tuned as the whole guest)."""
    given = job.guest
    job, placement, pci_node = place_truthfully(job, notes)
    host, guest, resolved, ledger, caps = job.host, job.guest, job.resolved, job.ledger, job.caps
    cpus = placement.cpus
    numa_off = placement.shares[0].node == ANY_NODE
    nodes = sorted(host.nodes_of(CpuSet(cpus))) if numa_off else [s.node for s in placement.shares]
    notes.append(cpu_note(host=host, policy=resolved.thread_policy, cpus=cpus, partial=placement.partial))
    notes.append(numa_note(host=host, guest=guest, placement=placement, pci_node=pci_node,
                           asked=resolved.numa.nodes, fit=resolved.numa_fit))  # fmt: skip
    notes.extend(cache_notes(host=host, placement=placement))
    emu = place_emulator(host=host, ledger=ledger, policy=resolved.emulator, iothreads=resolved.iothread_ids,
                         guest_cpus=CpuSet(cpus), nodes=nodes, realtime=resolved.realtime,
                         current=guest.emulatorpin)  # fmt: skip
    notes.extend(emu.notes)
    layout = plan_layout(job, placement, numa_off, notes)
    numatune = plan_numatune(job, nodes, layout.memnodes, numa_off, notes)
    slots = guest.vcpus if guest.vcpus != given.vcpus else None
    plan = Plan(
        guest=guest.name,
        vcpu_slots=slots,
        vcpu_current=guest.current_vcpus if slots else None,
        vcpu_placement="static",
        vcpu_cpuset=vcpu_cpuset(host, resolved, ledger, cpus, emu.used),
        vcpupins=layout.pins,
        emulatorpin=emu.emulatorpin,
        iothreads=resolved.iothreads if (resolved.iothreads or guest.iothreads) else None,
        iothreadpins=emu.iothreadpins if resolved.iothreads else (() if guest.iothreadpins else None),
        numatune=numatune,
        cpu=CpuPlan() if job.keep else CpuPlan(topology=layout.topology,
                                                numa_cells=None if numa_off else layout.cells),
        notes=tuple(notes),
    )  # fmt: skip
    if not tune:
        return plan
    homes = ledger.memory.homes
    shares = None if numa_off else home_shares({s.node: s.memory_kib for s in placement.shares}, homes)
    mem_nodes = numatune.nodeset if numatune is not None else CpuSet(nodes)
    tuning = device_tuning(host=host, guest=guest, resolved=resolved, caps=caps, vcpu_cpus=CpuSet(cpus),
                           emulator_cpus=emu.emulatorpin, nodes=mem_nodes, vcpupins=layout.pins,
                           topology=layout.topology, memory_shares=shares)  # fmt: skip
    return merge_tuning(plan, tuning)


def plan_kept_cells(job: Job, notes: list[Note]) -> Plan:
    """The guest's own NUMA cells, each bound to host node(s) (``placement.cells``); topology kept."""
    host, guest, resolved, ledger, caps = job.host, job.guest, job.resolved, job.ledger, job.caps
    mapped = _map_cells(job, notes)
    pins = mapped.pins
    cpus = [pins[v] for v in range(guest.vcpus)]
    nodes = sorted(mapped.nodes)
    notes.extend(mapped.notes)
    check_kept_topology(job, cpus, notes)
    emu = place_emulator(host=host, ledger=ledger, policy=resolved.emulator, iothreads=resolved.iothread_ids,
                         guest_cpus=CpuSet(cpus), nodes=nodes, realtime=resolved.realtime,
                         current=guest.emulatorpin)  # fmt: skip
    notes.extend(emu.notes)
    mode = resolved.memory_mode.value
    memnodes = tuple(
        MemNode(cellid=b.ask.cell, mode=mode, nodeset=b.nodes)
        for b in mapped.bindings
        if b.ask.cell is not None
    )
    vcpupins = tuple(VcpuPin(vcpu=v, cpus=CpuSet([cpu])) for v, cpu in enumerate(cpus))
    plan = Plan(
        guest=guest.name,
        vcpu_placement="static",
        vcpu_cpuset=vcpu_cpuset(host, resolved, ledger, cpus, emu.used),
        vcpupins=vcpupins,
        emulatorpin=emu.emulatorpin,
        iothreads=resolved.iothreads if (resolved.iothreads or guest.iothreads) else None,
        iothreadpins=emu.iothreadpins if resolved.iothreads else (() if guest.iothreadpins else None),
        numatune=plan_numatune(job, nodes, memnodes, False, notes),
        cpu=CpuPlan(),
        notes=tuple(notes),
    )
    # each kept cell's pages come from its own <memnode> nodes, as the ledger counts them
    shares = node_shares(as_planned(guest, plan)) or None
    tuning = device_tuning(host=host, guest=guest, resolved=resolved, caps=caps, vcpu_cpus=CpuSet(cpus),
                           emulator_cpus=emu.emulatorpin, nodes=CpuSet(nodes), vcpupins=vcpupins,
                           topology=seen_topology(guest), memory_shares=shares)  # fmt: skip
    return merge_tuning(plan, tuning)


def _map_cells(job: Job, notes: list[Note]) -> CellMap:
    """The guest's cells on this host: the requested core kind first, any kind when it is full.
    InfeasibleError (the hook's one-line refusal) when the host cannot hold the guest as it is."""
    host, guest, resolved = job.host, job.guest, job.resolved
    kind_cores, fallback_cores = cores_for_kind(
        host, resolved.core_kind, job.intent.core_kind is not None, notes
    )
    asks = cell_asks(guest)
    current = {p.vcpu: p.cpus.first() for p in guest.vcpupins if len(p.cpus) == 1}
    for cores in (kind_cores, fallback_cores):
        if cores is None:
            continue
        cell_job = CellJob(host=host, cores=cores, policy=resolved.thread_policy,
                           hugepage_kib=hugepage_size(resolved, guest), tenants=job.ledger.tenants,
                           latency=resolved.latency, pci_node=device_node(guest, job.caps, []),
                           numa_fit=resolved.numa_fit, cache_fit=resolved.cache_fit)  # fmt: skip
        mapped = map_cells(cell_job, asks, job.ledger.free, current)
        if mapped is not None:
            return mapped
    raise InfeasibleError(
        f"{guest.name}: this host cannot hold the guest's {len(guest.numa_cells)} NUMA cell(s) "
        f"({guest.vcpus} vCPUs, {guest.memory_kib} KiB) on its free CPUs and memory; what the guest sees "
        "is kept, so it is not reshaped to fit"
    )
