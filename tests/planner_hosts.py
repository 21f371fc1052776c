"""Test/bench helpers for the planner: the named hosts (``host_named``/``host_of`` from ``hosts``, the one
Host factory), tenant GuestSpecs with pins, and a stable text rendering of a Plan for goldens.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Sequence

from hosts import host_named, host_of
from vmtune.core.guest import GuestSpec, VcpuPin
from vmtune.core.intent.model import Intent
from vmtune.core.plan import Plan
from vmtune.core.planner import plan_guest
from vmtune.core.topology.model import Host
from vmtune.cpuset import CpuSet
from vmtune.errors import InfeasibleError

__all__ = [
    "fewest_nodes",
    "fill_seeded",
    "guest",
    "host_named",
    "host_of",
    "render_plan",
    "tenant",
    "whole_cores",
]

GIB = 1024 * 1024


def guest(name: str = "guest", vcpus: int = 4, memory_gib: float = 4, **kw: object) -> GuestSpec:
    return GuestSpec(name=name, source=f"{name}.xml", vcpus=vcpus, memory_kib=int(memory_gib * GIB), **kw)  # type: ignore[arg-type]


def tenant(name: str, cpus: Iterable[int], *, emulator: Iterable[int] = ()) -> GuestSpec:
    ids = list(cpus)
    return GuestSpec(
        name=name,
        source=f"{name}.xml",
        vcpus=len(ids),
        memory_kib=GIB,
        vcpupins=tuple(VcpuPin(vcpu=i, cpus=CpuSet([c])) for i, c in enumerate(ids)),
        emulatorpin=CpuSet(emulator) if emulator else None,
    )


def as_tenant(plan: Plan, spec: GuestSpec) -> GuestSpec:
    """The guest after applying ``plan``: what the next planning round sees as a tenant."""
    return GuestSpec(
        name=spec.name,
        source=spec.source,
        vcpus=spec.vcpus,
        memory_kib=spec.memory_kib,
        vcpu_cpuset=plan.vcpu_cpuset,
        vcpupins=plan.vcpupins or (),
        emulatorpin=plan.emulatorpin,
        iothreadpins=plan.iothreadpins or (),
    )


def render_plan(plan: Plan) -> str:
    """Stable text of every field a planner sets, then the notes as ``plan --explain`` lists them."""
    lines = [f"guest: {plan.guest}"]
    if plan.vcpu_slots is not None:
        lines.append(f"vcpu maximum={plan.vcpu_slots} current={plan.vcpu_current}")
    lines.append(f"vcpu placement={plan.vcpu_placement} cpuset={plan.vcpu_cpuset}")
    for pin in plan.vcpupins or ():
        lines.append(f"  vcpupin vcpu={pin.vcpu} cpuset={pin.cpus}")
    lines.append(f"emulatorpin: {plan.emulatorpin}")
    if plan.iothreads is not None:
        lines.append(f"iothreads: {plan.iothreads}")
    for io in plan.iothreadpins or ():
        lines.append(f"  iothreadpin iothread={io.iothread} cpuset={io.cpus}")
    for sched in plan.vcpusched or ():
        lines.append(f"vcpusched vcpus={sched.vcpus} scheduler={sched.scheduler} priority={sched.priority}")
    if plan.emulatorsched is not None:
        lines.append(
            f"emulatorsched scheduler={plan.emulatorsched.scheduler} priority={plan.emulatorsched.priority}"
        )
    for io_sched in plan.iothreadsched or ():
        lines.append(f"iothreadsched iothreads={io_sched.iothreads} scheduler={io_sched.scheduler} "
                     f"priority={io_sched.priority}")  # fmt: skip
    for tune in plan.cachetunes or ():
        caches = " ".join(f"{c.type}:L{c.level}:{c.id}={c.size_bytes // 1024}KiB" for c in tune.caches)
        lines.append(f"cachetune vcpus={tune.vcpus} {caches}")
    if plan.numatune:
        lines.append(f"numatune: memory mode={plan.numatune.mode} nodeset={plan.numatune.nodeset}")
        for mn in plan.numatune.memnodes:
            lines.append(f"  memnode cellid={mn.cellid} mode={mn.mode} nodeset={mn.nodeset}")
    if plan.cpu and plan.cpu.topology:
        t = plan.cpu.topology
        lines.append(f"cpu topology: sockets={t.sockets} dies={t.dies} cores={t.cores} threads={t.threads}")
    for cell in (plan.cpu.numa_cells if plan.cpu else None) or ():
        dist = " distances=" + ",".join(f"{i}:{d}" for i, d in cell.distances) if cell.distances else ""
        lines.append(f"  cell id={cell.id} cpus={cell.cpus} memory={cell.memory_kib}KiB{dist}")
    if plan.memory_backing:
        mb = plan.memory_backing
        lines.append(f"memoryBacking: hugepages={mb.hugepages} size={mb.page_size_kib}KiB")
    lines.append("notes:")
    lines.extend(f"  [{n.level}] {n.topic}: {n.message}" for n in plan.notes)
    return "\n".join(lines) + "\n"


def cores_of(host: Host, cpus: Sequence[int]) -> set[int]:
    return {c.index for c in (host.core_of(x) for x in cpus) if c is not None}


def whole_cores(host: Host, free: CpuSet) -> CpuSet:
    """The CPUs of the cores whose every online thread is free."""
    return CpuSet().union(*(c.cpus for c in host.cores if c.cpus and c.cpus.issubset(free)))


def fewest_nodes(host: Host, free: CpuSet, n: int, memory_kib: int) -> int | None:
    """The fewest NUMA nodes any placement of ``n`` vCPUs could span under priority 2 (a lower bound);
    None when the free pool can't hold them at all.

    Pool: the wholly free cores when they hold ``n`` (thread policy prefer never splits a core while whole
    cores suffice, so 3 nodes of whole cores rightly beat 2 nodes of half-used cores), else every free CPU.
    A node holds at most its CPUs in the pool, and at most as many vCPUs as its MemFree holds their share
    of the memory (memory follows the vCPUs); the fewest nodes is the smallest k whose k roomiest nodes
    hold ``n``.
    """

    def room(pool: CpuSet) -> list[int]:
        return [
            min(len(node.cpus & pool), (node.mem_free_kib or 0) * n // max(1, memory_kib))
            for node in host.nodes
        ]

    whole = room(whole_cores(host, free))
    caps = whole if sum(whole) >= n else room(free)
    total = 0
    for k, cap in enumerate(sorted(caps, reverse=True), 1):
        total += cap
        if total >= n:
            return k
    return None


def fill_seeded(
    host: Host, name: str, seed: int, free: CpuSet
) -> Iterator[tuple[GuestSpec, Plan, CpuSet, CpuSet]]:
    """Place a seeded mix of guests (1-32 vCPUs and some wider than a node, 256 MiB per vCPU) until the host
    refuses 10 in a row: (guest, plan, its vCPUs' CPUs, the free pool it was placed into) for each one."""
    rng = random.Random(f"{seed}-{name}")
    widest = max(len(n.cpus) for n in host.nodes)
    tenants: list[GuestSpec] = []
    refusals = 0
    while refusals < 10:
        n = rng.choice((1, 1, 2, 2, 4, 4, 8, 8, 16, 32, widest + 2))
        spec = guest(name=f"g{len(tenants)}", vcpus=n, memory_gib=n / 4)
        try:
            plan = plan_guest(host=host, guest=spec, tenants=tenants, intent=Intent())
        except InfeasibleError:
            refusals += 1
            continue
        refusals = 0
        cpus = CpuSet(p.cpus.first() for p in plan.vcpupins or ())
        yield spec, plan, cpus, free
        free = free - (plan.vcpu_cpuset or cpus)
        tenants.append(as_tenant(plan, spec))
