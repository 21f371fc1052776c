"""What a tenant is: which document is the same guest, which host CPUs a guest holds, a guest as planned.

Every consumer reads these three answers from here: the planner's free pool (``core.ledger.pool``),
``vmtune host --map`` (``core.ledger.ownership``), ``check``'s cross-guest rules, the hook's tenants and
claims, the batch that plans one file after the other, and ``verify``'s expectation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

from vmtune.core.guest import GuestSpec
from vmtune.core.intent.model import CpuPolicy
from vmtune.core.plan import Plan
from vmtune.cpuset import CpuSet

__all__ = ["Holding", "as_planned", "held_cpus", "is_shared", "others_of", "same_guest"]


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


@dataclass(frozen=True, slots=True, kw_only=True)
class Holding:
    """The host CPUs one guest holds, by the kind of thread that runs there."""

    vcpu_pins: CpuSet
    """The ``<vcpupin>`` CPUs (empty: no vCPU is pinned one by one)."""
    cpuset: CpuSet
    """``vcpu/@cpuset``: where unpinned threads run, and the idle SMT siblings an ``isolate`` plan keeps."""
    threads: CpuSet
    """``<emulatorpin>`` and ``<iothreadpin>`` CPUs."""
    shared: bool
    """A ``--cpu-policy shared`` guest: its CPUs are a pool other shared guests may float over too."""

    @property
    def vcpu_side(self) -> CpuSet:
        return self.vcpu_pins | self.cpuset

    @property
    def cpus(self) -> CpuSet:
        """Every host CPU the guest takes; empty for a floating guest (no pins, no cpuset)."""
        return self.vcpu_side | self.threads

    def own(self, housekeeping: CpuSet) -> CpuSet:
        """The CPUs held for itself: housekeeping CPUs reached only by emulator/iothread pins are shared
        with the host and every ``--emulator share`` guest by design (a vCPU pinned there still holds it)."""
        return self.cpus - (housekeeping - self.vcpu_side)


def held_cpus(guest: GuestSpec) -> Holding:
    """The CPUs ``guest`` holds. The cpuset counts even next to per-vCPU pins: libvirt runs every thread
    without a pin of its own there (the emulator without ``<emulatorpin>``)."""
    threads = CpuSet().union(*(p.cpus for p in guest.iothreadpins))
    if guest.emulatorpin is not None:
        threads = threads | guest.emulatorpin
    return Holding(
        vcpu_pins=CpuSet().union(*(p.cpus for p in guest.vcpupins)),
        cpuset=guest.vcpu_cpuset or CpuSet(),
        threads=threads,
        shared=is_shared(guest),
    )


def as_planned(guest: GuestSpec, plan: Plan) -> GuestSpec:
    """The guest as its plan leaves it, for the fields a tenant is judged by (pins, scheduling, memory
    binding, intent): the next guest of a batch is planned around it, and ``verify`` expects it."""
    changes: dict[str, object] = {}
    for name in ("vcpupins", "emulatorpin", "iothreadpins", "vcpusched", "vcpu_cpuset", "intent"):
        value = getattr(plan, name)
        if value is not None:
            changes[name] = value
    if plan.numatune is not None:
        changes |= {"numatune_mode": plan.numatune.mode, "numatune_nodeset": plan.numatune.nodeset,
                    "memnodes": plan.numatune.memnodes}  # fmt: skip
    return dataclasses.replace(guest, **changes)  # type: ignore[arg-type]
