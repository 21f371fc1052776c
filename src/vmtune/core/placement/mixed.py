"""``--cpu-policy mixed``: some vCPUs own whole cores, the others float over the shared pool.

Nova's ``hw:cpu_policy=mixed`` with ``hw:cpu_dedicated_mask``: a guest's housekeeping vCPUs (timers, IRQs,
management agents) time-share while its data-plane vCPUs own their cores. vmtune plans the dedicated vCPUs
as a dedicated guest of their own, one vCPU per whole core (the idle sibling held, as ``isolate``
holds it): the guest's topology cannot show it which vCPUs would be siblings, because its other vCPUs
float, so none are (threads=1 is then the truth, the rule VT109 judges by). The shared vCPUs float over
the shared pool (``Ledger.shared_free``, the same one ``--cpu-policy shared`` guests use) of the node that
holds most dedicated vCPUs, minus what the dedicated vCPUs hold; memory follows the dedicated part.

This module maps between the guest's vCPU ids and the dedicated part's (0..k-1) and merges the two halves;
the planner runs the dedicated placement itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from vmtune.core.guest import GuestSpec, GuestTopology, NumaCell, VcpuPin
from vmtune.core.plan import CpuPlan, Note, Plan
from vmtune.core.topology.model import Host
from vmtune.cpuset import CpuSet
from vmtune.errors import InfeasibleError

__all__ = ["MixedSplit", "dedicated_part", "merge_mixed", "shared_pool"]


@dataclass(frozen=True, slots=True, kw_only=True)
class MixedSplit:
    dedicated: tuple[int, ...]
    """The guest's dedicated vCPU ids, ascending: dedicated-part vCPU i is guest vCPU ``dedicated[i]``."""
    guest: GuestSpec
    """The dedicated part as a guest of its own (the whole memory, no cells or topology of its own)."""

    def real(self, part: CpuSet) -> CpuSet:
        return CpuSet(self.dedicated[i] for i in part)


def dedicated_part(guest: GuestSpec, dedicated: CpuSet) -> MixedSplit:
    ids = tuple(sorted(dedicated))
    index = {v: i for i, v in enumerate(ids)}
    pins = tuple(VcpuPin(vcpu=index[p.vcpu], cpus=p.cpus) for p in guest.vcpupins if p.vcpu in index)
    # the part is only a vehicle for placing the dedicated vCPUs: the whole guest's cells and what is bound
    # to them are judged once the parts are merged (``planning.policies.plan_mixed``)
    part = replace(guest, vcpus=len(ids), current_vcpus=None, vcpupins=pins, numa_cells=(), topology=None,
                   memnodes=(), vcpusched=(), memory_devices=(), hugepage_cells=CpuSet(),
                   controller_cells=())  # fmt: skip
    return MixedSplit(dedicated=ids, guest=part)


def shared_pool(host: Host, *, free: CpuSet, held: CpuSet, dedicated_cpus: CpuSet, guest: str) -> CpuSet:
    """The pool the shared vCPUs float over: the shared-free CPUs of the node holding most dedicated
    vCPUs (one node, so no shared vCPU's pin spans nodes), else of any of their nodes, minus ``held``."""
    counts: dict[int, int] = {}
    for cpu in dedicated_cpus:
        node = host.node_of(cpu)
        if node is not None:
            counts[node] = counts.get(node, 0) + 1
    for node_id in sorted(counts, key=lambda n: (-counts[n], n)):
        where = host.node(node_id)
        pool = (free & where.cpus) - held if where is not None else CpuSet()
        if pool:
            return pool
    if not counts:  # no NUMA data: the whole shared pool
        pool = free - held
        if pool:
            return pool
    raise InfeasibleError(
        f"{guest}: --cpu-policy mixed: no shared-pool CPU left for the shared vCPUs on the dedicated vCPUs' "
        f"node(s) {CpuSet(counts)} (the pool is every CPU neither reserved nor dedicated to a guest; "
        "--reserve CPUSET to shrink the reserve)"
    )


def merge_mixed(
    guest: GuestSpec, split: MixedSplit, part: Plan, pool: CpuSet, *, pool_node: int | None, keep: bool
) -> Plan:
    """The guest's plan from its dedicated part's (untuned: the planner tunes the whole guest after):
    dedicated vCPUs pinned as planned, the others to the pool; cells renumbered; the guest sees one socket
    of single-thread cores."""
    where = {split.dedicated[p.vcpu]: p.cpus for p in part.vcpupins or ()}
    pins = tuple(VcpuPin(vcpu=v, cpus=where.get(v, pool)) for v in range(guest.vcpus))
    shared = CpuSet(range(guest.vcpus)) - CpuSet(split.dedicated)
    cpu = part.cpu or CpuPlan()
    if keep:
        cpu = replace(cpu, topology=None, numa_cells=None)
    else:
        cells = _cells(cpu.numa_cells, split, shared, part, pool_node)
        cpu = replace(cpu, topology=GuestTopology(sockets=1, cores=guest.vcpus, threads=1), numa_cells=cells)
    notes = [n for n in part.notes if n.topic != "topology"]
    notes.append(
        Note(
            topic="cpu",
            message=f"--cpu-policy mixed: vCPU(s) {CpuSet(split.dedicated)} on whole dedicated cores "
            f"{CpuSet().union(*where.values())}, one each; vCPU(s) {shared} float over the shared pool "
            f"{pool}",
            xpath="/domain/cputune",
        )
    )
    if not keep:
        notes.append(
            Note(
                topic="topology",
                message=f"guest sees 1 socket x {guest.vcpus} core(s) x 1 thread: no two dedicated vCPUs "
                "share a host core and the shared ones float, so no vCPU has a sibling it could rely on",
                xpath="/domain/cpu/topology",
            )
        )
    return replace(
        part,
        vcpupins=pins,
        vcpu_cpuset=(part.vcpu_cpuset or CpuSet()) | pool,
        cpu=cpu,
        notes=tuple(notes),
    )


def _cells(
    cells: Sequence[NumaCell] | None, split: MixedSplit, shared: CpuSet, part: Plan, pool_node: int | None
) -> tuple[NumaCell, ...] | None:
    """The dedicated part's cells renumbered; the shared vCPUs join the cell bound to the pool's node."""
    if not cells:
        return None if cells is None else ()
    memnodes = part.numatune.memnodes if part.numatune is not None else ()
    home = next((m.cellid for m in memnodes if pool_node is not None and pool_node in m.nodeset), cells[0].id)
    return tuple(replace(c, cpus=split.real(c.cpus) | (shared if c.id == home else CpuSet())) for c in cells)
