"""What a tenant is: which document is the same guest, which host CPUs and memory a guest holds, a guest
as planned.

Every consumer reads these three answers from here: the planner's free pool (``core.ledger.pool``),
``vmtune host --map`` (``core.ledger.ownership``), ``check``'s cross-guest rules, the hook's tenants and
claims, the batch that plans one file after the other, and ``verify``'s expectation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from vmtune.core.guest import GuestSpec
from vmtune.core.intent.model import CpuPolicy
from vmtune.core.plan import Plan
from vmtune.cpuset import CpuSet
from vmtune.units import DEFAULT_HUGEPAGE_KIB

__all__ = [
    "Holding",
    "MemoryHolding",
    "as_planned",
    "held_cpus",
    "held_memory",
    "is_shared",
    "mixed_dedicated",
    "node_shares",
    "others_of",
    "same_guest",
]


def same_guest(a: GuestSpec, b: GuestSpec) -> bool:
    """Two documents describe the same guest when both carry a UUID and the UUIDs match (case-insensitive),
    else when both carry a name and the names match: libvirt keys a domain by UUID, and a file written by
    hand may lack one, leaving the name (unique per host) as the only key."""
    if a.uuid and b.uuid:
        return a.uuid.lower() == b.uuid.lower()
    return bool(a.name) and a.name == b.name


def others_of(guest: GuestSpec, tenants: Iterable[GuestSpec]) -> list[GuestSpec]:
    """``tenants`` without ``guest`` itself: a guest never competes with an older copy of itself."""
    return [t for t in tenants if not same_guest(t, guest)]


def is_shared(guest: GuestSpec) -> bool:
    """vmtune intent ``cpu-policy="shared"``: the guest time-shares its pins with other shared guests."""
    return guest.intent is not None and guest.intent.cpu_policy is CpuPolicy.SHARED


def mixed_dedicated(guest: GuestSpec) -> CpuSet | None:
    """vmtune intent ``cpu-policy="mixed"``: the vCPU ids its ``dedicated-mask`` gives whole cores (the
    others float over a shared pool), ids the guest lacks left out; None for every other guest."""
    intent = guest.intent
    if intent is None or intent.cpu_policy is not CpuPolicy.MIXED or intent.dedicated_mask is None:
        return None
    return intent.dedicated_mask.select(guest.vcpus) & CpuSet(range(guest.vcpus))


@dataclass(frozen=True, slots=True, kw_only=True)
class Holding:
    """The host CPUs one guest holds, by the kind of thread that runs there."""

    vcpu_pins: CpuSet
    """The ``<vcpupin>`` CPUs (empty: no vCPU is pinned one by one); of a mixed guest, only its dedicated
    vCPUs' pins."""
    cpuset: CpuSet
    """``vcpu/@cpuset``: where unpinned threads run, and the idle SMT siblings an ``isolate`` plan keeps."""
    threads: CpuSet
    """``<emulatorpin>`` and ``<iothreadpin>`` CPUs."""
    shared: bool
    """A ``--cpu-policy shared`` guest: its CPUs are a pool other shared guests may float over too."""
    pool: CpuSet = field(default_factory=CpuSet)
    """A ``--cpu-policy mixed`` guest's shared vCPUs' pins: floated over like a shared guest's pool, so
    not held for itself (other shared and mixed guests may float there too)."""

    @property
    def vcpu_side(self) -> CpuSet:
        return self.vcpu_pins | self.cpuset | self.pool

    @property
    def cpus(self) -> CpuSet:
        """Every host CPU the guest takes; empty for a floating guest (no pins, no cpuset)."""
        return self.vcpu_side | self.threads

    def own(self, housekeeping: CpuSet) -> CpuSet:
        """The CPUs held for itself: housekeeping CPUs reached only by emulator/iothread pins are shared
        with the host and every ``--emulator share`` guest by design (a vCPU pinned there still holds it)."""
        return self.cpus - (housekeeping - self.vcpu_side) - (self.pool - self.vcpu_pins)


def held_cpus(guest: GuestSpec) -> Holding:
    """The CPUs ``guest`` holds. The cpuset counts even next to per-vCPU pins: libvirt runs every thread
    without a pin of its own there (the emulator without ``<emulatorpin>``)."""
    threads = CpuSet().union(*(p.cpus for p in guest.iothreadpins))
    if guest.emulatorpin is not None:
        threads = threads | guest.emulatorpin
    dedicated = mixed_dedicated(guest)
    own = [p.cpus for p in guest.vcpupins if dedicated is None or p.vcpu in dedicated]
    floated = [p.cpus for p in guest.vcpupins if dedicated is not None and p.vcpu not in dedicated]
    cpuset = guest.vcpu_cpuset or CpuSet()
    pool = CpuSet().union(*floated)
    return Holding(
        vcpu_pins=CpuSet().union(*own),
        # a mixed guest's cpuset lists its pool too: those CPUs are floated over, not held
        cpuset=cpuset - pool if dedicated is not None else cpuset,
        threads=threads,
        shared=is_shared(guest),
        pool=pool,
    )


_BINDING_MODES = frozenset({"strict", "restrictive", "interleave"})
"""numatune modes that keep memory on the nodeset (interleave spreads it, but only over those nodes);
``preferred`` falls back to any node when its node is full, so it binds nothing."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryHolding:
    """The memory one guest commits: bound to host nodes, in hugepages, or floating over the host."""

    nodes: Mapping[int, int] = field(default_factory=dict, hash=False)
    """Host node -> KiB of normal pages bound there."""
    pages: Mapping[tuple[int, int], int] = field(default_factory=dict, hash=False)
    """(host node, page size KiB) -> hugepages bound there."""
    floating_kib: int = 0
    """Normal pages without a binding: they may land on any node, so they count against the host."""
    floating_pages: Mapping[int, int] = field(default_factory=dict, hash=False)
    """Page size KiB -> hugepages without a binding."""


def _pieces(guest: GuestSpec) -> Iterator[tuple[int, str | None, CpuSet | None]]:
    """(KiB, numatune mode, host nodeset) of each independently bound part of the guest's memory: each
    guest cell with its ``<memnode>`` (else the ``<memory>`` binding) and the DIMMs plugged into it, and
    the DIMMs without a target cell on the ``<memory>`` binding."""
    mode, nodeset = guest.numatune_mode or "strict", guest.numatune_nodeset
    auto = guest.numatune_placement == "auto"  # numad chooses at start: nothing is bound ahead of time
    if auto:
        nodeset = None
    if not guest.numa_cells:
        yield guest.memory_kib, mode, nodeset
        return
    memnodes = {m.cellid: m for m in guest.memnodes}
    cell_ids = {c.id for c in guest.numa_cells}
    dimms: dict[int | None, int] = {}
    for dev in guest.memory_devices:
        key = dev.node if dev.node in cell_ids else None
        dimms[key] = dimms.get(key, 0) + dev.size_kib
    for cell in guest.numa_cells:
        kib = cell.memory_kib + dimms.get(cell.id, 0)
        bound = memnodes.get(cell.id)
        if bound is not None and not auto:
            yield kib, bound.mode, bound.nodeset
        else:
            yield kib, mode, nodeset
    if None in dimms:
        yield dimms[None], mode, nodeset


def _spread(amount: int, nodes: CpuSet) -> Iterator[tuple[int, int]]:
    """``amount`` over ``nodes`` evenly, the first nodes taking the remainder: a strict multi-node binding
    may fill any of its nodes, and an even split is what interleave does and what vmtune's cells ask."""
    ids = list(nodes)
    base, rest = divmod(amount, len(ids))
    for i, node in enumerate(ids):
        yield node, base + (1 if i < rest else 0)


def node_shares(guest: GuestSpec) -> dict[int, int]:
    """KiB of the guest's bound memory per host node, split as ``held_memory`` splits it: what a plan's
    hugepage check must count so that the ledger (and VT206) see the same pages."""
    out: dict[int, int] = {}
    for kib, mode, nodeset in _pieces(guest):
        if kib > 0 and nodeset and mode in _BINDING_MODES:
            for node, part in _spread(kib, nodeset):
                out[node] = out.get(node, 0) + part
    return out


def held_memory(guest: GuestSpec, *, default_page_kib: int = DEFAULT_HUGEPAGE_KIB) -> MemoryHolding:
    """The memory ``guest`` commits, per host node, per hugepage size, or floating (no binding,
    ``preferred``, ``placement='auto'``); ``default_page_kib`` is the host's default hugepage size, used
    when ``<hugepages>`` names none. The planner's memory ledger, ``check`` (VT206) and ``host`` read it."""
    backing = guest.memory_backing
    page = (backing.page_size_kib or default_page_kib) if backing is not None and backing.hugepages else None
    nodes: dict[int, int] = {}
    pages: dict[tuple[int, int], int] = {}
    floating = 0
    floating_pages: dict[int, int] = {}
    for kib, mode, nodeset in _pieces(guest):
        if kib <= 0:
            continue
        bound = nodeset is not None and bool(nodeset) and mode in _BINDING_MODES
        if page is None and bound and nodeset is not None:
            for node, part in _spread(kib, nodeset):
                nodes[node] = nodes.get(node, 0) + part
        elif page is None:
            floating += kib
        elif bound and nodeset is not None:
            for node, part in _spread(-(-kib // page), nodeset):
                if part:
                    pages[node, page] = pages.get((node, page), 0) + part
        else:
            floating_pages[page] = floating_pages.get(page, 0) + -(-kib // page)
    return MemoryHolding(nodes=nodes, pages=pages, floating_kib=floating, floating_pages=floating_pages)


def as_planned(guest: GuestSpec, plan: Plan) -> GuestSpec:
    """The guest as its plan leaves it, for the fields a tenant is judged by (pins, scheduling, memory
    binding, cells, topology, backing, intent; the vCPU maximum a plan raised): the next guest of a
    batch is planned around it, and ``verify`` expects it."""
    changes: dict[str, object] = {}
    if plan.vcpu_slots is not None:
        changes |= {"vcpus": plan.vcpu_slots, "current_vcpus": plan.vcpu_current}
    for name in ("vcpupins", "emulatorpin", "iothreadpins", "vcpusched", "emulatorsched", "iothreadsched",
                 "cachetunes", "vcpu_cpuset", "intent", "memory_backing"):  # fmt: skip
        value = getattr(plan, name)
        if value is not None:
            changes[name] = value
    if plan.cpu is not None and plan.cpu.numa_cells is not None:
        changes["numa_cells"] = plan.cpu.numa_cells
    if plan.cpu is not None and plan.cpu.topology is not None:
        changes["topology"] = plan.cpu.topology
    if plan.numatune is not None:
        # a written nodeset replaces placement='auto' (``xmlmap.elements.numatune``): the memory is bound
        changes |= {"numatune_mode": plan.numatune.mode, "numatune_nodeset": plan.numatune.nodeset,
                    "memnodes": plan.numatune.memnodes, "numatune_placement": None}  # fmt: skip
    return dataclasses.replace(guest, **changes)  # type: ignore[arg-type]
