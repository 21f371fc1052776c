"""Plan: the desired state of the XML elements vmtune owns, plus the Notes explaining each decision.

Contract between the planner (``vmtune.core``) and the XML writer (``vmtune.xmlmap``):

* A field that is ``None`` means "vmtune leaves this element exactly as it is".
* A field with a value means "make the element say exactly this"; an empty tuple removes the element
  (e.g. ``vcpusched=()`` removes every ``<vcpusched>``).
* Within an element vmtune owns, attributes/children it does not model are kept (e.g. ``<cpu>``'s
  ``<model>`` and ``<feature>`` children survive a topology change).

``Plan()`` with every field None is the empty plan: applying it must reproduce the input's serialization.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from vmtune.core.guest import (
    CacheTune,
    EmulatorSched,
    GuestTopology,
    HypervFeature,
    IOThreadDevice,
    IOThreadPin,
    IOThreadSched,
    Memballoon,
    MemNode,
    MemoryBacking,
    NumaCell,
    Timer,
    VcpuPin,
    VcpuSched,
)
from vmtune.core.intent.model import Intent
from vmtune.cpuset import CpuSet

__all__ = ["CpuPlan", "FeaturesPlan", "Level", "Note", "NumaTunePlan", "Plan"]


class Level(StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True, slots=True, kw_only=True)
class Note:
    """Why a decision was made (shown by ``plan --explain``), or a warning about the host/guest."""

    topic: str
    """Area tag: ``cpu``, ``numa``, ``cache``, ``emulator``, ``memory``, ``hyperv``, ``clock``, ``rt``..."""
    message: str
    level: Level = Level.INFO
    xpath: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class NumaTunePlan:
    mode: str
    """libvirt literal: strict, preferred, interleave, restrictive."""
    nodeset: CpuSet
    memnodes: tuple[MemNode, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class CpuPlan:
    """What to set inside ``<cpu>``; None fields are left alone."""

    mode: str | None = None
    """``host-passthrough``, ``host-model``, ``custom``; None keeps the current mode."""
    topology: GuestTopology | None = None
    numa_cells: tuple[NumaCell, ...] | None = None
    """None: leave ``<numa>`` alone; (): remove it."""
    features: tuple[tuple[str, str], ...] = ()
    """(policy, name) pairs to ensure, e.g. ('require', 'topoext'); others are kept."""
    check: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class FeaturesPlan:
    """What to set inside ``<features>``; None fields are left alone."""

    hyperv: tuple[HypervFeature, ...] | None = None
    """None: leave ``<hyperv>`` alone; (): remove it; else exactly these children (mode custom)."""
    pmu: bool | None = None
    kvm_hidden: bool | None = None
    kvm_hint_dedicated: bool | None = None
    apic: bool | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    guest: str = ""
    vcpu_slots: int | None = None
    """``<vcpu>`` (the maximum vCPUs) raised to whole host cores, the extra vCPUs offline (``current``
    kept): set only when a guest is shaped afresh (``tuning.guesttopo.round_to_cores``)."""
    vcpu_current: int | None = None
    """``vcpu/@current``, written together with ``vcpu_slots``."""
    vcpu_placement: str | None = None
    """``static`` when vmtune pins; None leaves ``vcpu/@placement`` alone."""
    vcpu_cpuset: CpuSet | None = None
    """Union of the vCPU pins (for tools that only read ``vcpu/@cpuset``)."""
    vcpupins: tuple[VcpuPin, ...] | None = None
    emulatorpin: CpuSet | None = None
    iothreads: int | None = None
    iothreadpins: tuple[IOThreadPin, ...] | None = None
    device_iothreads: tuple[IOThreadDevice, ...] | None = None
    """Devices whose ``<driver iothread=>`` becomes exactly their ``iothread`` (None: attribute removed);
    devices not listed are left alone."""
    vcpusched: tuple[VcpuSched, ...] | None = None
    emulatorsched: EmulatorSched | None = None
    iothreadsched: tuple[IOThreadSched, ...] | None = None
    cachetunes: tuple[CacheTune, ...] | None = None
    """Exactly these ``<cachetune>`` (``()`` removes them all); None leaves them alone."""
    numatune: NumaTunePlan | None = None
    cpu: CpuPlan | None = None
    features: FeaturesPlan | None = None
    timers: tuple[Timer, ...] | None = None
    """Timers to ensure (by name); timers not listed are kept."""
    memory_backing: MemoryBacking | None = None
    memballoon: Memballoon | None = None
    intent: Intent | None = None
    """Written into vmtune's ``<metadata>``; None leaves the metadata alone."""
    notes: tuple[Note, ...] = ()
    advice: tuple[str, ...] = ()
    """Host-side checklist items vmtune does not apply itself (kernel cmdline, hugepage reservation...)."""

    def binding_only(self) -> Plan:
        """Only where the guest runs on the host (pins, ``vcpu/@cpuset``, numatune, the host cache ids of
        ``<cachetune>``): what the hook may change
        on an incoming guest, whose ABI libvirt checks against the source's."""
        return Plan(
            guest=self.guest, vcpu_placement=self.vcpu_placement, vcpu_cpuset=self.vcpu_cpuset,
            vcpupins=self.vcpupins, emulatorpin=self.emulatorpin, iothreadpins=self.iothreadpins,
            numatune=self.numatune, cachetunes=self.cachetunes, notes=self.notes, advice=self.advice,
        )  # fmt: skip

    @property
    def is_empty(self) -> bool:
        return all(
            getattr(self, name) is None
            for name in (
                "vcpu_slots", "vcpu_placement", "vcpu_cpuset", "vcpupins", "emulatorpin", "iothreads",
                "iothreadpins", "device_iothreads",
                "vcpusched", "emulatorsched", "iothreadsched", "cachetunes", "numatune", "cpu", "features",
                "timers", "memory_backing",
                "memballoon", "intent",
            )
        )  # fmt: skip
