"""plan_guest: decide where a guest's vCPUs, emulator, iothreads and memory go, and what topology it sees.

Pure and deterministic. ``plan_guest`` reads as its steps, each explained by a Note (``plan --explain``):

1. resolve the intent (profiles + knobs) and build the ledger: online - reserved - other tenants' pins,
   the guest's own current pins counting as free for itself (``core.ledger``); a ``shared`` guest goes
   to ``_plan_shared_pool`` instead;
2. ``_place_vcpus``: the requested core kind on hybrid hosts (latency/realtime: the big cores), the node
   of passthrough PCI devices, the hugepage size node choice needs free, then whole cores per the thread
   policy in one node when one fits, else the fewest closest nodes, whole idle cache groups
   (``placement.numa`` + ``placement.allocator``); the current pins instead when they are as good;
   ``_place_truthfully`` then makes the pins ones a guest topology can tell (an odd guest on 2-thread
   cores gets an offline vCPU on its lone vCPU's sibling; a kept topology is followed);
3. ``place_emulator``: emulator and iothreads (``placement.emulator``);
4. ``_guest_layout``: guest topology, NUMA cells and vCPU pins (``tuning.guesttopo``). A guest that
   already has cells, or that vmtune shaped before, keeps its shape (it is the guest's ABI) unless
   ``--reshape``: ``_plan_kept_cells`` binds its cells to host nodes (``placement.cells``) and
   the topology is left alone; ``keep_abi`` (the hook) moreover returns only the host binding;
5. ``_vcpu_cpuset`` and ``_numatune``;
6. device/profile tuning (``tuning.devices``) merged in by ``_merge_tuning``;
7. realtime: FIFO for an emulator and IOThreads that have CPUs of their own (``tuning.rtthreads``);
   ``--cache-share``: the ``<cachetune>`` of the L3 instances the vCPUs sit on (``tuning.cachetune``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from vmtune.core.guest import GuestSpec, GuestTopology, MemNode, VcpuPin
from vmtune.core.intent.bounds import check_bounds
from vmtune.core.intent.model import CoreKind, CpuPolicy, EmulatorPolicy, Intent, Resolved, ThreadPolicy
from vmtune.core.intent.profiles import resolve
from vmtune.core.ledger.pool import Ledger, build_ledger
from vmtune.core.placement.allocator import DomainPick, grouping_levels, is_cache_level
from vmtune.core.placement.cells import CellJob, CellMap, cell_asks, map_cells
from vmtune.core.placement.emulator import place_emulator
from vmtune.core.placement.explain import cache_notes, cpu_note, infeasible_message, numa_note
from vmtune.core.placement.mixed import dedicated_part, merge_mixed, shared_pool
from vmtune.core.placement.numa import (
    ANY_NODE,
    Failure,
    NodeShare,
    Placement,
    cell_distances,
    memory_shortfall,
    place,
    split_memory,
)
from vmtune.core.placement.shared import plan_shared
from vmtune.core.plan import CpuPlan, Level, Note, NumaTunePlan, Plan
from vmtune.core.topology.caps import HostCaps
from vmtune.core.topology.model import KIND_BIG, KIND_LITTLE, Core, Host
from vmtune.core.tuning.cachetune import plan_cachetune
from vmtune.core.tuning.devices import DeviceTuning, device_tuning
from vmtune.core.tuning.guesttopo import (
    Cell,
    GuestLayout,
    carry_cell_access,
    guest_layout,
    hidden_note,
    round_to_cores,
    slots_note,
    threads_per_vcpu_core,
    topology_note,
)
from vmtune.core.tuning.iothreads import spread_iothreads
from vmtune.core.tuning.memmode import (
    at_home,
    home_shares,
    keep_user_binding,
    single_node_preferred,
    user_binding,
)
from vmtune.core.tuning.rtthreads import rt_helper_sched
from vmtune.cpuset import CpuSet
from vmtune.errors import InfeasibleError, InputError
from vmtune.units import DEFAULT_HUGEPAGE_KIB, MIB

__all__ = ["plan_guest"]


def plan_guest(
    *,
    host: Host,
    guest: GuestSpec,
    tenants: Sequence[GuestSpec],
    intent: Intent,
    caps: HostCaps | None = None,
    keep_abi: bool = False,
) -> Plan:
    """The plan for ``guest``; with ``keep_abi`` (an incoming guest: migrate, restore) only its host
    binding, so nothing the guest sees changes."""
    if guest.vcpus < 1:
        raise InputError(f"{guest.source}: /domain/vcpu must be at least 1, got {guest.vcpus}")
    resolved = resolve(intent, guest)
    check_bounds(host=host, guest=guest, numa=resolved.numa, caps=caps)
    ledger = build_ledger(host=host, guest=guest, tenants=tenants, reserve=resolved.reserve,
                          memory_reserve_kib=intent.memory_reserve)  # fmt: skip
    # every step below sees each node's MemFree / free hugepages as the room the memory ledger leaves
    host = ledger.memory.view(host)
    notes = list(ledger.notes)
    keep = keep_abi or (not intent.reshape and (bool(guest.numa_cells) or guest.intent is not None))
    job = _Job(host=host, guest=guest, intent=intent, resolved=resolved, ledger=ledger, caps=caps, keep=keep,
               tenants=tenants)  # fmt: skip
    if resolved.cpu_policy is CpuPolicy.SHARED:
        plan = _plan_shared_pool(job, notes)
    elif resolved.cpu_policy is CpuPolicy.MIXED:
        plan = _plan_mixed(job, notes)
    elif keep and guest.numa_cells and not resolved.numa.off:
        plan = _plan_kept_cells(job, notes)
    else:
        plan = _plan_dedicated(job, notes)
    plan = _with_cachetune(job, _with_rt_helpers(job, spread_iothreads(plan, job.guest)))
    # --reshape acts once: the stored intent leaves it out, so the next re-plan keeps the new shape
    plan = replace(plan, intent=replace(intent, reshape=False))
    return plan.binding_only() if keep_abi else plan


def _plan_dedicated(job: _Job, notes: list[Note], *, tune: bool = True) -> Plan:
    """A host CPU per vCPU, the guest's shape fresh from the placement (kept with ``job.keep``); without
    ``tune`` the placement only (a mixed guest's dedicated part, tuned as the whole guest)."""
    given = job.guest
    job, placement, pci_node = _place_truthfully(job, notes)
    host, guest, resolved, ledger, caps = job.host, job.guest, job.resolved, job.ledger, job.caps
    cpus = placement.cpus
    numa_off = placement.shares[0].node == ANY_NODE
    nodes = sorted(host.nodes_of(CpuSet(cpus))) if numa_off else [s.node for s in placement.shares]
    notes.append(cpu_note(host=host, policy=resolved.thread_policy, cpus=cpus, partial=placement.partial))
    notes.append(numa_note(host=host, guest=guest, placement=placement, pci_node=pci_node,
                           asked=resolved.numa.nodes, fit=resolved.numa_fit))  # fmt: skip
    notes.extend(cache_notes(host=host, placement=placement))
    emu = place_emulator(host=host, ledger=ledger, policy=resolved.emulator, iothreads=resolved.iothreads,
                         guest_cpus=CpuSet(cpus), nodes=nodes, realtime=resolved.realtime,
                         current=guest.emulatorpin)  # fmt: skip
    notes.extend(emu.notes)
    layout = _guest_layout(job, placement, numa_off, notes)
    numatune = _numatune(job, nodes, layout.memnodes, numa_off, notes)
    slots = guest.vcpus if guest.vcpus != given.vcpus else None
    plan = Plan(
        guest=guest.name,
        vcpu_slots=slots,
        vcpu_current=guest.current_vcpus if slots else None,
        vcpu_placement="static",
        vcpu_cpuset=_vcpu_cpuset(host, resolved, ledger, cpus, emu.used),
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
    return _merge_tuning(plan, tuning)


def _plan_kept_cells(job: _Job, notes: list[Note]) -> Plan:
    """The guest's own NUMA cells, each bound to host node(s) (``placement.cells``); topology kept."""
    host, guest, resolved, ledger, caps = job.host, job.guest, job.resolved, job.ledger, job.caps
    mapped = _map_cells(job, notes)
    pins = mapped.pins
    cpus = [pins[v] for v in range(guest.vcpus)]
    nodes = sorted(mapped.nodes)
    notes.extend(mapped.notes)
    _check_kept_topology(job, cpus, notes)
    emu = place_emulator(host=host, ledger=ledger, policy=resolved.emulator, iothreads=resolved.iothreads,
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
        vcpu_cpuset=_vcpu_cpuset(host, resolved, ledger, cpus, emu.used),
        vcpupins=vcpupins,
        emulatorpin=emu.emulatorpin,
        iothreads=resolved.iothreads if (resolved.iothreads or guest.iothreads) else None,
        iothreadpins=emu.iothreadpins if resolved.iothreads else (() if guest.iothreadpins else None),
        numatune=_numatune(job, nodes, memnodes, False, notes),
        cpu=CpuPlan(),
        notes=tuple(notes),
    )
    tuning = device_tuning(host=host, guest=guest, resolved=resolved, caps=caps, vcpu_cpus=CpuSet(cpus),
                           emulator_cpus=emu.emulatorpin, nodes=CpuSet(nodes), vcpupins=vcpupins,
                           topology=_seen_topology(guest))  # fmt: skip
    return _merge_tuning(plan, tuning)


def _map_cells(job: _Job, notes: list[Note]) -> CellMap:
    """The guest's cells on this host: the requested core kind first, any kind when it is full.
    InfeasibleError (the hook's one-line refusal) when the host cannot hold the guest as it is."""
    host, guest, resolved = job.host, job.guest, job.resolved
    kind_cores, fallback_cores = _cores_for_kind(
        host, resolved.core_kind, job.intent.core_kind is not None, notes
    )
    asks = cell_asks(guest)
    current = {p.vcpu: p.cpus.first() for p in guest.vcpupins if len(p.cpus) == 1}
    for cores in (kind_cores, fallback_cores):
        if cores is None:
            continue
        cell_job = CellJob(host=host, cores=cores, policy=resolved.thread_policy,
                           hugepage_kib=_hugepage_size(resolved, guest), tenants=job.ledger.tenants,
                           latency=resolved.latency, pci_node=_device_node(guest, job.caps, []),
                           numa_fit=resolved.numa_fit, cache_fit=resolved.cache_fit)  # fmt: skip
        mapped = map_cells(cell_job, asks, job.ledger.free, current)
        if mapped is not None:
            return mapped
    raise InfeasibleError(
        f"{guest.name}: this host cannot hold the guest's {len(guest.numa_cells)} NUMA cell(s) "
        f"({guest.vcpus} vCPUs, {guest.memory_kib} KiB) on its free CPUs and memory; what the guest sees "
        "is kept, so it is not reshaped to fit"
    )


def _seen_topology(guest: GuestSpec) -> GuestTopology:
    """The topology the guest has, or the one libvirt gives it without ``<topology>``: a core per vCPU."""
    return guest.topology or GuestTopology(sockets=guest.vcpus, cores=1, threads=1)


# -- steps ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class _Job:
    """What every step of one ``plan_guest`` call reads."""

    host: Host
    guest: GuestSpec
    intent: Intent
    resolved: Resolved
    ledger: Ledger
    caps: HostCaps | None
    keep: bool
    """The guest keeps its NUMA cells and topology (it has some, or vmtune shaped it before)."""
    tenants: Sequence[GuestSpec] = ()


def _with_rt_helpers(job: _Job, plan: Plan) -> Plan:
    """Step 7: ``<emulatorsched>``/``<iothreadsched>`` of a realtime guest."""
    emulator, iothreads, notes = rt_helper_sched(plan, realtime=job.resolved.realtime, caps=job.caps,
                                                 housekeeping=job.ledger.housekeeping)  # fmt: skip
    if not notes:
        return plan
    return replace(plan, emulatorsched=emulator, iothreadsched=iothreads, notes=(*plan.notes, *notes))


def _with_cachetune(job: _Job, plan: Plan) -> Plan:
    """Step 7: cache ways on the L3 instances of the planned vCPU pins (a shared pool has none)."""
    pinned = job.resolved.cpu_policy is not CpuPolicy.SHARED and plan.vcpupins is not None
    cpus = CpuSet().union(*(p.cpus for p in plan.vcpupins or ())) if pinned else CpuSet()
    tunes, notes = plan_cachetune(host=job.host, guest=job.guest, share=job.intent.cache_share, caps=job.caps,
                                  tenants=job.tenants, vcpu_cpus=cpus, force=job.resolved.force)  # fmt: skip
    if tunes is None and not notes:
        return plan
    return replace(plan, cachetunes=tunes, notes=(*plan.notes, *notes))


def _plan_shared_pool(job: _Job, notes: list[Note]) -> Plan:
    """``--cpu-policy shared``: the guest floats over a pool other shared guests use too."""
    host, guest, resolved, caps = job.host, job.guest, job.resolved, job.caps
    pci = _device_node(guest, caps, notes)
    pool = plan_shared(host=host, guest=guest, ledger=job.ledger, resolved=resolved,
                       hugepage_kib=_hugepage_size(resolved, guest), pci_node=pci)  # fmt: skip
    shared = replace(pool.plan, notes=(*notes, *pool.plan.notes))
    if shared.numatune is not None:
        moved: list[Note] = []
        numatune = at_home(shared.numatune, job.ledger.memory.homes, moved)
        shared = replace(shared, numatune=numatune, notes=(*shared.notes, *moved))
    topology = pool.topology
    if job.keep:
        shared, topology = _keep_shared_shape(shared, guest), _seen_topology(guest)
    tuning = device_tuning(host=host, guest=guest, resolved=resolved, caps=caps, vcpu_cpus=pool.pool,
                           emulator_cpus=pool.pool, nodes=pool.nodes, vcpupins=shared.vcpupins or (),
                           topology=topology)  # fmt: skip
    return _merge_tuning(shared, tuning)


def _plan_mixed(job: _Job, notes: list[Note]) -> Plan:
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
        part = _plan_dedicated(part_job, part_notes, tune=False)
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
    if job.keep and plan.numatune is not None:
        numatune = plan.numatune
        memnodes = tuple(MemNode(cellid=c.id, mode=numatune.mode, nodeset=numatune.nodeset)
                         for c in sorted(guest.numa_cells, key=lambda c: c.id))  # fmt: skip
        plan = replace(plan, numatune=replace(numatune, memnodes=memnodes))
    nodes = (
        plan.numatune.nodeset if plan.numatune is not None else job.host.nodes_of(plan.vcpu_cpuset or pool)
    )
    topology = plan.cpu.topology if plan.cpu is not None and plan.cpu.topology else _seen_topology(guest)
    tuning = device_tuning(host=job.host, guest=guest, resolved=resolved, caps=job.caps,
                           vcpu_cpus=dedicated_cpus | pool, emulator_cpus=plan.emulatorpin,
                           nodes=CpuSet(nodes), vcpupins=plan.vcpupins or (), topology=topology)  # fmt: skip
    return _merge_tuning(plan, tuning)


def _keep_shared_shape(plan: Plan, guest: GuestSpec) -> Plan:
    """A shared guest that has cells keeps them, each cell's memory bound to the pool's nodes."""
    numatune = plan.numatune
    if numatune is not None and guest.numa_cells:
        memnodes = tuple(MemNode(cellid=c.id, mode=numatune.mode, nodeset=numatune.nodeset)
                         for c in sorted(guest.numa_cells, key=lambda c: c.id))  # fmt: skip
        numatune = replace(numatune, memnodes=memnodes)
    return replace(plan, cpu=CpuPlan(), numatune=numatune)


def _place_vcpus(job: _Job, notes: list[Note]) -> tuple[Placement, int | None]:
    """(where the vCPUs go, the passthrough devices' node): the requested core kind first, any kind when
    the profile's default kind is full; the current pins when they are as good. InfeasibleError when
    nothing holds the guest."""
    host, guest, resolved, ledger = job.host, job.guest, job.resolved, job.ledger
    explicit = job.intent.core_kind is not None
    kind_cores, fallback_cores = _cores_for_kind(host, resolved.core_kind, explicit, notes)
    pci_node = _device_node(guest, job.caps, notes)
    hugepage_kib = _hugepage_size(resolved, guest)
    placement = _place(host=host, guest=guest, ledger=ledger, resolved=resolved, cores=kind_cores,
                       hugepage_kib=hugepage_kib, pci_node=pci_node)  # fmt: skip
    if isinstance(placement, Failure) and fallback_cores is not None:
        notes.append(
            Note(
                topic="cpu",
                level=Level.WARNING,
                message="not enough free big cores for this latency guest; using any core kind",
            )
        )
        placement = _place(host=host, guest=guest, ledger=ledger, resolved=resolved, cores=fallback_cores,
                           hugepage_kib=hugepage_kib, pci_node=pci_node)  # fmt: skip
    if isinstance(placement, Failure):
        why = [ledger.memory.explain(n, hugepage_kib) for n, _ in placement.memory]
        why.append(ledger.memory.floating() if placement.memory and not hugepage_kib else "")
        raise InfeasibleError(
            infeasible_message(
                guest=guest, policy=resolved.thread_policy, failure=placement, hugepage_kib=hugepage_kib
            )
            + "".join(f"; {w}" for w in why if w)
        )
    kept = _keep_current(host=host, guest=guest, ledger=ledger, resolved=resolved, fresh=placement,
                         cores=kind_cores, hugepage_kib=hugepage_kib, pci_node=pci_node)  # fmt: skip
    if kept is None:
        return placement, pci_node
    notes.append(
        Note(
            topic="cpu",
            message="current pins are already well placed (whole cores, fewest nodes and cache groups): "
            "kept as they are",
        )
    )
    return kept, pci_node


def _place_truthfully(job: _Job, notes: list[Note]) -> tuple[_Job, Placement, int | None]:
    """(the job, where the vCPUs go, the devices' node) such that the guest's topology can tell which
    vCPUs share a host core (``guesttopo.threads_per_vcpu_core``, the rule VT109 judges by).

    The plain placement first. A kept topology (the guest's ABI) then has its pins follow it where whole
    cores allow: 1 thread per core gets one vCPU per core, the siblings left free (not held, unlike
    ``isolate``); 2 threads get sibling pairs even under ``isolate``. A fresh guest whose plain pins no
    topology can show (an odd count on 2-thread cores: 2+2+1) gets offline vCPU slots on its idle siblings
    (``round_to_cores``; the job returned carries the raised maximum), else cores of one width only (where
    the free cores mix 2-thread cores with single-thread ones: E-cores, a core whose sibling is offline),
    else one vCPU per core; each only when it spans no more nodes and cache groups than the plain
    placement, which is kept (with a warning) otherwise. Under ``require`` a true topology comes first: any
    of them however far it spans, else InfeasibleError.
    """
    guest, resolved, host = job.guest, job.resolved, job.host
    before = list(notes)
    placement, pci_node = _place_vcpus(job, notes)
    width = host.summary().threads_per_core
    shown = threads_per_vcpu_core(host, placement.cpus)
    isolate = resolved.thread_policy is ThreadPolicy.ISOLATE
    policy = {1: ThreadPolicy.ISOLATE, width: ThreadPolicy.PREFER}
    kept = _seen_topology(guest).threads
    tries: list[tuple[_Job, int, Note | None]] = []
    if job.keep and shown != kept and kept in policy and width > 1 and guest.vcpus % kept == 0:
        say = f"{kept} vCPU(s) per host core, as the guest's kept topology says"
        tries.append((replace(job, resolved=replace(resolved, thread_policy=policy[kept])), kept,
                      Note(topic="topology", message=say, xpath="/domain/cputune")))  # fmt: skip
    elif not job.keep and shown is None and not isolate and width > 1:
        slots = round_to_cores(guest.vcpus, width)
        if slots != guest.vcpus and resolved.cpu_policy is CpuPolicy.DEDICATED:
            more = replace(guest, vcpus=slots, current_vcpus=guest.current_vcpus or guest.vcpus)
            tries.append((replace(job, guest=more), width, slots_note(guest.vcpus, slots, width)))
        tries.extend(_one_width_tries(job, width))
        say = "one vCPU per host core: the plain pins share cores unevenly, which no topology can show"
        tries.append((replace(job, resolved=replace(resolved, thread_policy=ThreadPolicy.ISOLATE)), 1,
                      Note(topic="topology", message=say, xpath="/domain/cputune")))  # fmt: skip
    plain_spread = _reach(host, placement.cpus)
    # under require a truthful topology outranks compactness: a wider truthful placement, else a refusal
    require = not job.keep and resolved.thread_policy is ThreadPolicy.REQUIRE
    for bounded in (True, False) if require else (True,):
        for attempt, want, note in tries:
            scratch = list(before)
            try:
                truer, pci = _place_vcpus(attempt, scratch)
            except InfeasibleError:
                continue
            if threads_per_vcpu_core(host, truer.cpus) != want:
                continue
            if bounded and not job.keep and _reach(host, truer.cpus) > plain_spread:
                continue
            notes[:] = [*scratch, *([note] if note else [])]
            return replace(attempt, resolved=resolved), truer, pci
    if require and shown is None:
        raise InfeasibleError(
            f"{guest.name}: needs {guest.vcpus} vCPU(s) on whole cores of one width (thread policy require): "
            "the free cores mix 1 and 2 usable threads, so no guest topology could tell which vCPUs are "
            "siblings; free whole cores of one kind, or use --thread-policy prefer"
        )
    return job, placement, pci_node


def _one_width_tries(job: _Job, width: int) -> list[tuple[_Job, int, Note | None]]:
    """The placement on free cores of all ``width`` threads only (threads=width), then on the free cores
    that have one thread (E-cores, a core whose sibling is offline: threads=1). Where the free cores mix
    both, the plain placement takes some of each, which no uniform topology can show. A core half taken
    by another guest is in neither: using it would split a core between guests (VT103)."""
    free = job.ledger.free
    whole = [c for c in job.host.cores if c.cpus and c.cpus.issubset(free)]
    full = CpuSet().union(*(c.cpus for c in whole if len(c.cpus) == width))
    lone = CpuSet().union(*(c.cpus for c in whole if len(c.cpus) < width))
    if not full or not lone:
        return []
    out: list[tuple[_Job, int, Note | None]] = []
    for cpus, want, which in ((full, width, f"{width}-thread"), (lone, 1, "single-thread")):
        say = f"only {which} cores: the free cores mix widths, and a guest on both kinds has no true topology"
        out.append((replace(job, ledger=replace(job.ledger, free=cpus)), want,
                    Note(topic="topology", message=say, xpath="/domain/cputune")))  # fmt: skip
    return out


def _reach(host: Host, cpus: Sequence[int]) -> tuple[int, int]:
    """(NUMA nodes, caches shared by more than one core) a set of CPUs touches: what a truer topology
    must not cost. A per-core L2 is not counted: more cores always touch more of those."""
    shared: set[int] = set()
    for cpu in cpus:
        core = host.core_of(cpu)
        if core is not None:
            shared.update(i for i in core.caches.values() if not host.caches[i].cpus.issubset(core.cpus))
    return len(host.nodes_of(CpuSet(cpus))), len(shared)


def _guest_layout(job: _Job, placement: Placement, numa_off: bool, notes: list[Note]) -> GuestLayout:
    """The topology, NUMA cells and vCPU pins the guest sees."""
    cells, numa_cells = _cells(job.guest, placement, numa_off)
    mode = job.resolved.memory_mode.value
    layout = guest_layout(host=job.host, cpus=placement.cpus, cells=cells, memory_mode=mode,
                          numa_cells=numa_cells and not job.keep)  # fmt: skip
    if job.keep:
        # a guest vmtune shaped before keeps what it sees; only the pins follow the placement
        _check_kept_topology(job, placement.cpus, notes)
        return replace(layout, topology=_seen_topology(job.guest))
    if layout.hidden:
        notes.append(hidden_note(job.host, placement.cpus))
    _check_memory_devices(job.guest, layout)
    seen = carry_cell_access(job.guest.numa_cells, layout.cells)
    distances = cell_distances(job.host, [s.node for s in placement.shares]) if len(seen) > 1 else ()
    if len(distances) == len(seen):
        seen = tuple(replace(c, distances=d) for c, d in zip(seen, distances, strict=True))
    layout = replace(layout, cells=seen)
    notes.append(topology_note(layout.topology.sockets, layout.topology.cores, layout.threads, len(cells)))
    return layout


def _check_kept_topology(job: _Job, cpus: Sequence[int], notes: list[Note]) -> None:
    """Warn when the pins cannot match the topology the guest keeps (VT109 will say so too)."""
    kept = _seen_topology(job.guest).threads
    if threads_per_vcpu_core(job.host, cpus) != kept:
        say = (
            f"too few whole cores free to pin as the guest's topology ({kept} thread(s) per core, kept) "
            "says: some vCPUs sit on host cores it cannot show"
        )
        notes.append(Note(topic="topology", level=Level.WARNING, message=say, xpath="/domain/cpu/topology"))


def _check_memory_devices(guest: GuestSpec, layout: GuestLayout) -> None:
    """A memory device is plugged into a guest cell: the new shape must still have that cell."""
    for dev in guest.memory_devices:
        if dev.node is not None and dev.node >= max(len(layout.cells), 1):
            raise InputError(
                f"{guest.source}: a <memory model='{dev.model}'> device targets guest cell {dev.node}, "
                f"the new shape has {len(layout.cells)} cell(s); keep the shape (no --reshape) or move it"
            )


def _vcpu_cpuset(
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


def _numatune(
    job: _Job, nodes: Sequence[int], memnodes: tuple[MemNode, ...], numa_off: bool, notes: list[Note]
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


def _cores_for_kind(
    host: Host, kind: CoreKind, explicit: bool, notes: list[Note]
) -> tuple[Sequence[Core], Sequence[Core] | None]:
    """(cores to use, fallback cores when the profile's default kind is full)."""
    cores = [c for c in host.cores if c.cpus]
    if not host.hybrid:
        if explicit and kind is not CoreKind.ANY:
            notes.append(Note(topic="cpu", message=f"--core-kind {kind}: every core of this host is alike"))
        return cores, None
    if kind is CoreKind.ANY:
        notes.append(
            Note(topic="cpu", message="hybrid host: any core kind (--core-kind big|little to choose)")
        )
        return cores, None
    want = KIND_BIG if kind is CoreKind.BIG else KIND_LITTLE
    chosen = [c for c in cores if c.kind == want]
    notes.append(
        Note(
            topic="cpu",
            message=f"hybrid host: {kind} cores only (CPUs {CpuSet().union(*(c.cpus for c in chosen))}; "
            f"from {host.kind_evidence})"
            + ("" if explicit else "; latency and realtime guests get the big cores"),
        )
    )
    return chosen, (None if explicit else cores)


def _device_node(guest: GuestSpec, caps: HostCaps | None, notes: list[Note]) -> int | None:
    if not guest.hostdev_pci:
        return None
    found = {addr: caps.pci_node(addr) if caps else None for addr in guest.hostdev_pci}
    known = {a: n for a, n in found.items() if n is not None and n >= 0}
    if not known:
        notes.append(
            Note(
                topic="numa",
                level=Level.WARNING,
                message=f"NUMA node of passthrough device(s) {', '.join(guest.hostdev_pci)} unknown "
                "(sysfs numa_node -1 or not read): placed by CPU and memory only",
            )
        )
        return None
    count: dict[int, int] = {}
    for node in known.values():
        count[node] = count.get(node, 0) + 1
    best = min(count, key=lambda n: (-count[n], n))
    if len(count) > 1:
        notes.append(
            Note(
                topic="numa",
                level=Level.WARNING,
                message="passthrough devices sit on different nodes ("
                + ", ".join(f"{a} node {n}" for a, n in sorted(known.items()))
                + f"): preferring node {best}, which has the most of them",
            )
        )
    return best


def _hugepage_size(resolved: Resolved, guest: GuestSpec) -> int | None:
    """Page size node choice must find free (the backing itself is decided by ``core.hugepages``)."""
    if resolved.hugepages_off:
        return None
    if resolved.hugepages_kib:
        return resolved.hugepages_kib
    current = guest.memory_backing
    if current is not None and current.hugepages and not guest.running:
        return current.page_size_kib or DEFAULT_HUGEPAGE_KIB
    return None


def _place(
    *,
    host: Host,
    guest: GuestSpec,
    ledger: Ledger,
    resolved: Resolved,
    cores: Sequence[Core],
    hugepage_kib: int | None,
    pci_node: int | None,
) -> Placement | Failure:
    return place(
        host=host,
        free=ledger.free,
        cores=cores,
        vcpus=guest.vcpus,
        policy=resolved.thread_policy,
        numa=resolved.numa,
        memory_kib=guest.cell_memory_kib,
        hugepage_kib=hugepage_kib,
        tenants=ledger.tenants,
        latency=resolved.latency,
        pci_node=pci_node,
        numa_fit=resolved.numa_fit,
        cache_fit=resolved.cache_fit,
    )


def _spread(host: Host, cpus: CpuSet, ledger: Ledger) -> tuple[int, int, int]:
    """(nodes, cache groups, groups shared with other guests) a CPU set touches."""
    keys: set[tuple[int, int]] = set()
    shared: set[tuple[int, int]] = set()
    taken = CpuSet().union(*(t.cache for t in ledger.tenants))
    for level in grouping_levels(host, with_nodes=False):
        if not is_cache_level(level):
            continue
        for cpu in cpus:
            core = host.core_of(cpu)
            key = None if core is None else core.caches.get(level)
            if key is None:
                continue
            keys.add((level, key))
            if not host.caches[key].cpus.isdisjoint(taken):
                shared.add((level, key))
    return len(host.nodes_of(cpus)), len(keys), len(shared)


def _keep_current(
    *,
    host: Host,
    guest: GuestSpec,
    ledger: Ledger,
    resolved: Resolved,
    fresh: Placement,
    cores: Sequence[Core],
    hugepage_kib: int | None,
    pci_node: int | None,
) -> Placement | None:
    """The current pins, when they are as good as a fresh placement: a re-plan that changes nothing keeps
    the guest where it is."""
    n = guest.vcpus
    pins = [guest.pin_of(i) for i in range(n)]
    if any(p is None or len(p) != 1 for p in pins):
        return None
    cpus = [p.first() for p in pins if p is not None]
    current = CpuSet(cpus)
    if len(current) != n or not current.issubset(ledger.free):
        return None
    allowed = CpuSet().union(*(c.cpus for c in cores))
    if not current.issubset(allowed):
        return None
    used = [host.core_of(c) for c in cpus]
    if any(c is None for c in used) or threads_per_vcpu_core(host, cpus) is None:
        return None
    used_cores = {c.index: c for c in used if c is not None}
    whole = all(c.cpus.issubset(ledger.free) for c in used_cores.values())
    policy = resolved.thread_policy
    if (policy is ThreadPolicy.ISOLATE and len(used_cores) != n) or (not whole and not fresh.partial):
        return None
    numa_off = fresh.shares[0].node == ANY_NODE
    # Same node count and cache-group count as a fresh plan. A neighbour that moved into one of the guest's
    # cache groups since does not make the guest move: that would only churn (the neighbour was placed
    # knowing the guest was there).
    mine, best = _spread(host, current, ledger), _spread(host, CpuSet(fresh.cpus), ledger)
    if mine[0] > best[0] or mine[1] > best[1]:
        return None
    nodes = sorted(host.nodes_of(current))
    if pci_node is not None and pci_node in [s.node for s in fresh.shares] and pci_node not in nodes:
        return None
    if numa_off:
        return replace(fresh, shares=(replace(fresh.shares[0], pick=_pick(cpus)),), order=tuple(cpus))
    # nodes in the order of their first vCPU, memory split as a fresh wide placement splits it
    ordered = sorted(
        nodes, key=lambda node_id: next(i for i, c in enumerate(cpus) if host.node_of(c) == node_id)
    )
    here = [[c for c in cpus if host.node_of(c) == node_id] for node_id in ordered]
    total = guest.cell_memory_kib
    memory = (
        split_memory(total, [len(h) for h in here], hugepage_kib or MIB) if total > 0 else (0,) * len(here)
    )
    shares: list[NodeShare] = []
    for node_id, on_node, mem in zip(ordered, here, memory, strict=True):
        node = host.node(node_id)
        if node is None or memory_shortfall(node, mem, hugepage_kib):
            return None
        shares.append(NodeShare(node=node_id, pick=_pick(on_node), memory_kib=mem))
    # keep vCPU order exactly: a cell lists the vCPUs that sit on its node
    return Placement(shares=tuple(shares), partial=fresh.partial, free_units=fresh.free_units,
                     candidates=fresh.candidates, order=tuple(cpus))  # fmt: skip


def _pick(cpus: Sequence[int]) -> DomainPick:
    return DomainPick(cpus=tuple(cpus), cores=(), groups=(), quality=(0, 0, 0, 0, 0))


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


# -- device/profile tuning ---------------------------------------------------------------------------------


def _merge_tuning(plan: Plan, tuning: DeviceTuning) -> Plan:
    """Device/profile settings from ``core.tuning``; the planner keeps ``<cpu>`` topology and cells."""
    cpu = plan.cpu or CpuPlan()
    if tuning.cpu_mode is not None or tuning.cpu_features:
        cpu = replace(cpu, mode=tuning.cpu_mode, features=tuning.cpu_features)
    return replace(
        plan,
        cpu=cpu,
        features=tuning.features,
        timers=tuning.timers,
        memory_backing=tuning.memory_backing,
        memballoon=tuning.memballoon,
        vcpusched=tuning.vcpusched,
        notes=(*plan.notes, *tuning.notes),
        advice=(*plan.advice, *tuning.advice),
    )
