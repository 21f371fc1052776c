"""Step 2 of ``plan_guest``: where the vCPUs go.

``place_vcpus`` picks the requested core kind on hybrid hosts (``cores_for_kind``), the node of passthrough
PCI devices (``device_node``), the hugepage size node choice needs free (``hugepage_size``), then whole cores
per the thread policy (``placement.numa`` + ``placement.allocator``), or the current pins when they are as
good; ``place_truthfully`` makes the pins ones a guest topology can tell.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from vmtune.core.guest import GuestSpec
from vmtune.core.intent.model import CoreKind, CpuPolicy, Resolved, ThreadPolicy
from vmtune.core.ledger.pool import Ledger
from vmtune.core.placement.allocator import DomainPick, grouping_levels, is_cache_level
from vmtune.core.placement.explain import infeasible_message
from vmtune.core.placement.numa import (
    ANY_NODE,
    Failure,
    NodeShare,
    Placement,
    memory_shortfall,
    place,
    split_memory,
)
from vmtune.core.plan import Level, Note
from vmtune.core.planning.job import Job, seen_topology
from vmtune.core.topology.caps import HostCaps
from vmtune.core.topology.model import KIND_BIG, KIND_LITTLE, Core, Host
from vmtune.core.tuning.guesttopo import round_to_cores, slots_note, threads_per_vcpu_core
from vmtune.cpuset import CpuSet
from vmtune.errors import InfeasibleError
from vmtune.units import DEFAULT_HUGEPAGE_KIB, MIB

__all__ = ["cores_for_kind", "device_node", "hugepage_size", "place_truthfully", "place_vcpus"]


def place_vcpus(job: Job, notes: list[Note]) -> tuple[Placement, int | None]:
    """(where the vCPUs go, the passthrough devices' node): the requested core kind first, any kind when
    the profile's default kind is full; the current pins when they are as good. InfeasibleError when
    nothing holds the guest."""
    host, guest, resolved, ledger = job.host, job.guest, job.resolved, job.ledger
    explicit = job.intent.core_kind is not None
    kind_cores, fallback_cores = cores_for_kind(host, resolved.core_kind, explicit, notes)
    pci_node = device_node(guest, job.caps, notes)
    hugepage_kib = hugepage_size(resolved, guest)
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


def place_truthfully(job: Job, notes: list[Note]) -> tuple[Job, Placement, int | None]:
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
    placement, pci_node = place_vcpus(job, notes)
    width = host.summary().threads_per_core
    shown = threads_per_vcpu_core(host, placement.cpus)
    isolate = resolved.thread_policy is ThreadPolicy.ISOLATE
    policy = {1: ThreadPolicy.ISOLATE, width: ThreadPolicy.PREFER}
    kept = seen_topology(guest).threads
    tries: list[tuple[Job, int, Note | None]] = []
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
                truer, pci = place_vcpus(attempt, scratch)
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


def _one_width_tries(job: Job, width: int) -> list[tuple[Job, int, Note | None]]:
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
    out: list[tuple[Job, int, Note | None]] = []
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


def cores_for_kind(
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


def device_node(guest: GuestSpec, caps: HostCaps | None, notes: list[Note]) -> int | None:
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


def hugepage_size(resolved: Resolved, guest: GuestSpec) -> int | None:
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
