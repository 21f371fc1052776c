"""The plans of the other CPU policies: ``--cpu-policy shared`` (``plan_shared_pool``) and ``--cpu-policy
mixed`` (``plan_mixed``), which plans its dedicated part with ``plan_dedicated``."""

from __future__ import annotations

from dataclasses import replace

from vmtune.core.guest import GuestSpec, MemNode
from vmtune.core.intent.model import CpuPolicy, EmulatorPolicy, ThreadPolicy
from vmtune.core.placement.mixed import dedicated_part, merge_mixed, shared_pool
from vmtune.core.placement.shared import plan_shared
from vmtune.core.plan import CpuPlan, Note, Plan
from vmtune.core.planning.dedicated import plan_dedicated
from vmtune.core.planning.job import Job, merge_tuning, seen_topology
from vmtune.core.planning.layout import check_cell_users
from vmtune.core.planning.vcpus import device_node, hugepage_size
from vmtune.core.tuning.devices import device_tuning
from vmtune.core.tuning.memmode import at_home
from vmtune.cpuset import CpuSet
from vmtune.errors import InfeasibleError

__all__ = ["plan_mixed", "plan_shared_pool"]


def plan_shared_pool(job: Job, notes: list[Note]) -> Plan:
    """``--cpu-policy shared``: the guest floats over a pool other shared guests use too."""
    host, guest, resolved, caps = job.host, job.guest, job.resolved, job.caps
    pci = device_node(guest, caps, notes)
    pool = plan_shared(host=host, guest=guest, ledger=job.ledger, resolved=resolved,
                       hugepage_kib=hugepage_size(resolved, guest), pci_node=pci)  # fmt: skip
    shared = replace(pool.plan, notes=(*notes, *pool.plan.notes))
    if shared.numatune is not None:
        moved: list[Note] = []
        numatune = at_home(shared.numatune, job.ledger.memory.homes, moved)
        shared = replace(shared, numatune=numatune, notes=(*shared.notes, *moved))
    topology = pool.topology
    if job.keep:
        shared, topology = _keep_shared_shape(shared, guest), seen_topology(guest)
    tuning = device_tuning(host=host, guest=guest, resolved=resolved, caps=caps, vcpu_cpus=pool.pool,
                           emulator_cpus=pool.pool, nodes=pool.nodes, vcpupins=shared.vcpupins or (),
                           topology=topology)  # fmt: skip
    return merge_tuning(shared, tuning)


def plan_mixed(job: Job, notes: list[Note]) -> Plan:
    """``--cpu-policy mixed`` (``placement.mixed``): the dedicated vCPUs planned as a guest of their own,
    one per whole core (``isolate``), the others pinned to the shared pool of their node. A guest that
    keeps its shape keeps its cells, each bound to the dedicated part's nodes."""
    resolved, guest = job.resolved, job.guest
    split = dedicated_part(guest, resolved.dedicated_vcpus or CpuSet())
    part_resolved = replace(resolved, cpu_policy=CpuPolicy.DEDICATED, thread_policy=ThreadPolicy.ISOLATE,
                            dedicated_vcpus=None, realtime_vcpus=CpuSet())  # fmt: skip
    part_job = replace(job, guest=split.guest, resolved=part_resolved, keep=False)
    while True:
        part_notes = list(notes)
        part = plan_dedicated(part_job, part_notes, tune=False)
        dedicated_cpus = CpuSet(p.cpus.first() for p in part.vcpupins or ())
        held = part.vcpu_cpuset or dedicated_cpus
        if resolved.emulator is EmulatorPolicy.ISOLATE:
            # an isolated emulator or iothread is the guest's own too: its shared vCPUs must not land there
            held = held.union(part.emulatorpin or CpuSet(), *(p.cpus for p in part.iothreadpins or ()))
        try:
            pool = shared_pool(job.host, free=job.ledger.shared_free, held=held,
                               dedicated_cpus=dedicated_cpus, guest=guest.name)  # fmt: skip
            break
        except InfeasibleError:
            # the best fit for the dedicated cores can leave their node no CPU to float on: try the
            # dedicated part again without the nodes it took, until no node is left
            used = CpuSet().union(
                *(n.cpus for n in job.host.nodes if n.id in job.host.nodes_of(dedicated_cpus))
            )
            ledger = part_job.ledger
            if not ledger.free - used:
                raise
            part_job = replace(part_job, ledger=replace(ledger, free=ledger.free - used))
    notes[:] = part_notes
    plan = merge_mixed(guest, split, part, pool, pool_node=job.host.node_of(pool.first()), keep=job.keep)
    if not job.keep:
        check_cell_users(guest, len(plan.cpu.numa_cells or ()) if plan.cpu is not None else 0)
    if job.keep and plan.numatune is not None:
        numatune = plan.numatune
        memnodes = tuple(MemNode(cellid=c.id, mode=numatune.mode, nodeset=numatune.nodeset)
                         for c in sorted(guest.numa_cells, key=lambda c: c.id))  # fmt: skip
        plan = replace(plan, numatune=replace(numatune, memnodes=memnodes))
    nodes = (
        plan.numatune.nodeset if plan.numatune is not None else job.host.nodes_of(plan.vcpu_cpuset or pool)
    )
    topology = plan.cpu.topology if plan.cpu is not None and plan.cpu.topology else seen_topology(guest)
    tuning = device_tuning(host=job.host, guest=guest, resolved=resolved, caps=job.caps,
                           vcpu_cpus=dedicated_cpus | pool, emulator_cpus=plan.emulatorpin,
                           nodes=CpuSet(nodes), vcpupins=plan.vcpupins or (), topology=topology)  # fmt: skip
    return merge_tuning(plan, tuning)


def _keep_shared_shape(plan: Plan, guest: GuestSpec) -> Plan:
    """A shared guest that has cells keeps them, each cell's memory bound to the pool's nodes."""
    numatune = plan.numatune
    if numatune is not None and guest.numa_cells:
        memnodes = tuple(MemNode(cellid=c.id, mode=numatune.mode, nodeset=numatune.nodeset)
                         for c in sorted(guest.numa_cells, key=lambda c: c.id))  # fmt: skip
        numatune = replace(numatune, memnodes=memnodes)
    return replace(plan, cpu=CpuPlan(), numatune=numatune)
