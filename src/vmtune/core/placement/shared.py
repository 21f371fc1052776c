"""``--cpu-policy shared``: vCPUs that time-share a pool of host CPUs instead of owning one each.

Nova's ``hw:cpu_policy=shared`` and KubeVirt's default (non-dedicated) guests: more vCPUs than CPUs is
allowed (overcommit), so a 4-vCPU guest runs on a 2-CPU host. What vmtune still decides:

* the pool: online CPUs minus the reserved ones minus every *dedicated* tenant's CPUs
  (``Ledger.shared_free``); other shared guests float over the same pool by design;
* NUMA: the pool and the memory stay on one node when one has pool CPUs and room for the memory (the
  node whose pool would be least loaded - shared vCPUs per pool CPU, counting the shared tenants already
  there - then most MemFree, then the lowest id; the node of passthrough devices first), else the fewest
  nodes in that order whose memory adds up;
* every vCPU, the emulator and the iothreads get the whole pool (``<vcpupin cpuset=POOL>`` for each vCPU:
  what libvirt then applies is exactly what ``vmtune verify`` reads back from the threads' affinity);
* the guest sees one socket of single-thread cores: it has no SMT siblings it could rely on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from vmtune.core.guest import GuestSpec, GuestTopology, IOThreadPin, VcpuPin
from vmtune.core.intent.model import Numa, Resolved
from vmtune.core.ledger.pool import Ledger
from vmtune.core.placement.numafit import memory_shortfall
from vmtune.core.plan import CpuPlan, Level, Note, NumaTunePlan, Plan
from vmtune.core.topology.model import Host, Node
from vmtune.cpuset import CpuSet
from vmtune.errors import InfeasibleError
from vmtune.units import fmt_kib_brief

__all__ = ["OVERCOMMIT_WARN", "SharedPlacement", "plan_shared"]

OVERCOMMIT_WARN = 4.0
"""Shared vCPUs per pool CPU above which vmtune warns: Nova's default ``cpu_allocation_ratio`` (4.0)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SharedPlacement:
    plan: Plan
    pool: CpuSet
    nodes: CpuSet
    """Host nodes the memory is bound to (empty with ``--numa off``)."""
    topology: GuestTopology
    """What the guest sees: one socket of single-thread cores."""


def plan_shared(
    *,
    host: Host,
    guest: GuestSpec,
    ledger: Ledger,
    resolved: Resolved,
    hugepage_kib: int | None,
    pci_node: int | None,
) -> SharedPlacement:
    everything = ledger.shared_free
    if not everything:
        dedicated = ledger.online - ledger.reserved - everything
        raise InfeasibleError(
            f"{guest.name}: --cpu-policy shared needs at least one CPU for its pool, 0 free: online "
            f"{ledger.online or 'none'}, reserved {ledger.reserved or 'none'}, dedicated to other guests "
            f"{dedicated or 'none'} (--reserve CPUSET to shrink the reserve)"
        )
    load = _shared_load(ledger)
    notes: list[Note] = []
    if resolved.numa.off:
        pool, nodes = everything, CpuSet()
        notes.append(Note(topic="memory", message="--numa off: memory placement left to the host kernel"))
    else:
        chosen = _nodes(host, guest=guest, pool=everything, load=load, numa=resolved.numa,
                        hugepage_kib=hugepage_kib, pci_node=pci_node)  # fmt: skip
        nodes = CpuSet(n.id for n in chosen)
        pool = everything & CpuSet().union(*(n.cpus for n in chosen))
        notes.append(_numa_note(nodes, resolved, pci_node))
    notes[:0] = _pool_notes(guest, pool, (_load_on(load, pool) + guest.vcpus) / len(pool))
    notes.append(
        Note(
            topic="topology",
            message=f"guest sees 1 socket x {guest.vcpus} core(s) x 1 thread: shared vCPUs have no host "
            "siblings it could rely on",
            xpath="/domain/cpu/topology",
        )
    )
    topology = GuestTopology(sockets=1, cores=guest.vcpus, threads=1)
    plan = _plan(guest, resolved=resolved, pool=pool, nodes=nodes, topology=topology, notes=notes)
    return SharedPlacement(plan=plan, pool=pool, nodes=nodes, topology=topology)


def _numa_note(nodes: CpuSet, resolved: Resolved, pci_node: int | None) -> Note:
    why = "the node of its passthrough devices" if pci_node in nodes and len(nodes) == 1 else (
        "one node" if len(nodes) == 1 else f"{len(nodes)} nodes: no single node has pool CPUs and room"
    )  # fmt: skip
    return Note(
        topic="numa",
        message=f"shared pool on node(s) {nodes} ({why}); memory bound there with mode "
        f"{resolved.memory_mode.value}",
        xpath="/domain/numatune",
    )


def _pool_notes(guest: GuestSpec, pool: CpuSet, ratio: float) -> list[Note]:
    """What the pool is and its load (shared vCPUs per pool CPU), warning past ``OVERCOMMIT_WARN``."""
    notes = [
        Note(
            topic="cpu",
            message=f"--cpu-policy shared: {guest.vcpus} vCPU(s), the emulator and iothreads float over CPUs "
            f"{pool} ({len(pool)} CPU(s), no dedicated guest there); {ratio:.2g} shared vCPUs per "
            "pool CPU with the other shared guests",
            xpath="/domain/cputune",
        )
    ]
    if ratio > OVERCOMMIT_WARN:
        notes.append(
            Note(
                topic="cpu",
                level=Level.WARNING,
                message=f"pool overcommitted {ratio:.2g}:1 (more than {OVERCOMMIT_WARN:g}:1, Nova's "
                "default cpu_allocation_ratio): expect steal time",
            )
        )
    return notes


def _plan(
    guest: GuestSpec,
    *,
    resolved: Resolved,
    pool: CpuSet,
    nodes: CpuSet,
    topology: GuestTopology,
    notes: list[Note],
) -> Plan:
    """Every vCPU, the emulator and the iothreads pinned to the whole pool; memory bound to its nodes."""
    iothreads = resolved.iothreads
    return Plan(
        guest=guest.name,
        vcpu_placement="static",
        vcpu_cpuset=pool,
        vcpupins=tuple(VcpuPin(vcpu=i, cpus=pool) for i in range(guest.vcpus)),
        emulatorpin=pool,
        iothreads=iothreads if (iothreads or guest.iothreads) else None,
        iothreadpins=tuple(IOThreadPin(iothread=i, cpus=pool) for i in resolved.iothread_ids)
        if iothreads
        else (() if guest.iothreadpins else None),
        numatune=NumaTunePlan(mode=resolved.memory_mode.value, nodeset=nodes) if nodes else None,
        cpu=CpuPlan(topology=topology, numa_cells=() if nodes else None),
        notes=tuple(notes),
    )


def _shared_load(ledger: Ledger) -> dict[int, float]:
    """Shared tenants' vCPUs per host CPU, each tenant's vCPUs spread evenly over its CPUs."""
    out: dict[int, float] = {}
    for tenant in ledger.tenants:
        if tenant.shared and tenant.cpus:
            share = tenant.vcpus / len(tenant.cpus)
            for cpu in tenant.cpus:
                out[cpu] = out.get(cpu, 0.0) + share
    return out


def _load_on(load: dict[int, float], cpus: CpuSet) -> float:
    return sum(load.get(c, 0.0) for c in cpus)


def _nodes(
    host: Host,
    *,
    guest: GuestSpec,
    pool: CpuSet,
    load: dict[int, float],
    numa: Numa,
    hugepage_kib: int | None,
    pci_node: int | None,
) -> Sequence[Node]:
    candidates = [n for n in host.nodes if not n.cpus.isdisjoint(pool)]
    if not candidates:  # no NUMA data: one implicit node holds the pool
        return [Node(id=0, cpus=pool)]

    def key(node: Node) -> tuple[int, float, int, int]:
        here = pool & node.cpus
        ratio = (_load_on(load, here) + guest.vcpus) / len(here)
        return (0 if node.id == pci_node else 1, ratio, -(node.mem_free_kib or 0), node.id)

    ordered = sorted(candidates, key=key)
    if numa.nodes:
        return sorted(ordered[: numa.nodes], key=lambda n: n.id)
    for node in ordered:
        if memory_shortfall(node, guest.memory_kib, hugepage_kib) is None:
            return [node]
    chosen: list[Node] = []
    for node in ordered:
        chosen.append(node)
        if _fits(chosen, guest.memory_kib, hugepage_kib):
            return sorted(chosen, key=lambda n: n.id)
    per_node = "; ".join(
        f"node {n.id} {memory_shortfall(n, guest.memory_kib, hugepage_kib) or 'fits'}" for n in ordered
    )
    raise InfeasibleError(
        f"{guest.name}: {fmt_kib_brief(guest.memory_kib)} of memory does not fit the shared pool's nodes "
        f"together: {per_node}"
    )


def _fits(nodes: Sequence[Node], kib: int, hugepage_kib: int | None) -> bool:
    if hugepage_kib:
        free = sum(hp.free for n in nodes if (hp := n.hugepages_of(hugepage_kib)) is not None)
        return free * hugepage_kib >= kib
    if any(n.mem_free_kib is None for n in nodes):
        return True
    return sum(n.mem_free_kib or 0 for n in nodes) >= kib
