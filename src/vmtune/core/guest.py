"""What vmtune knows of a guest: read from its domain XML by ``vmtune.xmlmap`` (pure data here).

The small value types (VcpuPin, Timer, HypervFeature, ...) are shared with ``vmtune.core.plan``: a Plan
says what these owned elements should become, a GuestSpec says what they are now.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from vmtune.core.intent.model import Intent, OsFamily
from vmtune.cpuset import CpuSet

__all__ = [
    "CacheAlloc",
    "CacheTune",
    "EmulatorSched",
    "GuestSpec",
    "GuestTopology",
    "HypervFeature",
    "IOThreadDevice",
    "IOThreadDeviceKind",
    "IOThreadPin",
    "IOThreadSched",
    "MemNode",
    "Memballoon",
    "MemoryBacking",
    "MemoryDevice",
    "NumaCell",
    "Timer",
    "VcpuPin",
    "VcpuSched",
    "iothread_ids",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class VcpuPin:
    vcpu: int
    cpus: CpuSet


@dataclass(frozen=True, slots=True, kw_only=True)
class IOThreadPin:
    iothread: int
    cpus: CpuSet


class IOThreadDeviceKind(StrEnum):
    """The element of a device an IOThread can serve (its ``<driver iothread=>``)."""

    DISK = "disk"
    CONTROLLER = "controller"


@dataclass(frozen=True, slots=True, kw_only=True)
class IOThreadDevice:
    """A virtio disk or virtio-scsi controller and the IOThread its ``<driver iothread=>`` names."""

    kind: IOThreadDeviceKind
    ordinal: int
    """Its position among the domain's ``<devices>`` children of its kind (every ``<disk>``, or every
    ``<controller>``), so the writer finds the element the reader saw."""
    label: str
    """How notes name it: the disk's target dev (``vda``), or ``SCSI controller N``."""
    iothread: int | None = None
    """None: no ``iothread`` attribute (the device runs in QEMU's main loop)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class VcpuSched:
    """``<vcpusched vcpus= scheduler= priority=>``; scheduler is libvirt's literal (fifo, rr, batch, idle)."""

    vcpus: CpuSet
    """vCPU ids (libvirt uses cpuset syntax over vCPU ids)."""
    scheduler: str
    priority: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EmulatorSched:
    """``<emulatorsched scheduler= priority=>``: the scheduler of QEMU's main (emulator) thread."""

    scheduler: str
    priority: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class IOThreadSched:
    """``<iothreadsched iothreads= scheduler= priority=>``."""

    iothreads: CpuSet
    """IOThread ids (cpuset syntax over the ids, as libvirt reads it)."""
    scheduler: str
    priority: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CacheAlloc:
    """``<cache id= level= type= size= unit=>`` inside a ``<cachetune>``: ways of one cache instance."""

    id: int
    """The cache instance: the ``id`` file of the host's sysfs cache index, resctrl's domain id."""
    level: int
    type: str
    """``both`` (unified), ``code`` or ``data`` (with CDP on)."""
    size_bytes: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CacheTune:
    """``<cachetune vcpus=>``: a resctrl group libvirt makes at start, its vCPU threads in it."""

    vcpus: CpuSet
    caches: tuple[CacheAlloc, ...] = ()
    """Empty for a monitoring-only ``<cachetune>`` (no allocation, no CLOSID of its own)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MemNode:
    cellid: int
    mode: str
    nodeset: CpuSet
    """Host NUMA node ids (libvirt nodeset uses the cpuset syntax)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class NumaCell:
    id: int
    cpus: CpuSet
    """Guest vCPU ids in this guest NUMA cell."""
    memory_kib: int
    mem_access: str | None = None
    """``memAccess`` (shared/private): virtiofs and vhost-user need ``shared`` on every cell."""
    discard: bool | None = None
    distances: tuple[tuple[int, int], ...] = ()
    """(sibling cell id, distance) of ``<distances>``: a new shape's cells mirror the host's SLIT between the
    nodes they are bound to (``placement.numafit.cell_distances``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryDevice:
    """A ``<devices><memory>`` device (DIMM, NVDIMM, virtio-mem): guest memory outside the cells."""

    model: str
    size_kib: int
    node: int | None = None
    """The guest cell it is plugged into (``<target><node>``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class GuestTopology:
    sockets: int
    dies: int = 1
    clusters: int = 1
    cores: int = 1
    threads: int = 1

    @property
    def vcpus(self) -> int:
        return self.sockets * self.dies * self.clusters * self.cores * self.threads


@dataclass(frozen=True, slots=True, kw_only=True)
class Timer:
    """``<clock><timer name= present= tickpolicy=>``."""

    name: str
    present: bool | None = None
    tickpolicy: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class HypervFeature:
    """One child of ``<features><hyperv>``, e.g. ``<spinlocks state='on' retries='8191'/>``.

    ``attrs`` holds extra attributes besides ``state`` (retries, value); ``children`` holds the names of
    sub-elements that are switched on (``stimer/direct``, ``tlbflush/direct|extended``).
    """

    name: str
    state: bool = True
    attrs: tuple[tuple[str, str], ...] = ()
    children: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryBacking:
    hugepages: bool = False
    page_size_kib: int | None = None
    """Explicit ``<page size=>`` (None: the host default hugepage size)."""
    page_nodeset: CpuSet | None = None
    locked: bool = False
    nosharepages: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Memballoon:
    model: str
    """``virtio``, ``none``, ..."""
    autodeflate: bool | None = None
    freepage_reporting: bool | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class GuestSpec:
    name: str
    source: str
    """File path or ``libvirt:NAME`` (for messages)."""
    uuid: str | None = None
    domain_type: str = "kvm"
    arch: str | None = None
    machine: str | None = None
    vcpus: int = 1
    """Maximum vCPUs (``<vcpu>`` text)."""
    current_vcpus: int | None = None
    vcpu_placement: str | None = None
    vcpu_cpuset: CpuSet | None = None
    memory_kib: int = 0
    """``<memory>``: the total, memory devices included."""
    max_memory_kib: int | None = None
    """``<maxMemory>``: the hotplug ceiling (None without memory hotplug)."""
    memory_devices: tuple[MemoryDevice, ...] = ()
    controller_cells: tuple[tuple[str, int], ...] = ()
    """(XPath of the controller, guest cell) for each ``<controller><target><node>`` (PCI expander buses)."""
    hugepage_cells: CpuSet = field(default_factory=CpuSet)
    """Guest cells the ``<hugepages><page nodeset=>`` attributes name (every page, not only the first)."""
    iothreads: int = 0
    iothread_given_ids: tuple[int, ...] = ()
    """The ids ``<iothreadids>`` lists; libvirt numbers the other IOThreads (``iothread_ids``)."""
    vcpupins: tuple[VcpuPin, ...] = ()
    emulatorpin: CpuSet | None = None
    iothreadpins: tuple[IOThreadPin, ...] = ()
    vcpusched: tuple[VcpuSched, ...] = ()
    emulatorsched: EmulatorSched | None = None
    iothreadsched: tuple[IOThreadSched, ...] = ()
    cachetunes: tuple[CacheTune, ...] = ()
    numatune_mode: str | None = None
    numatune_nodeset: CpuSet | None = None
    numatune_placement: str | None = None
    memnodes: tuple[MemNode, ...] = ()
    cpu_mode: str | None = None
    cpu_model: str | None = None
    topology: GuestTopology | None = None
    numa_cells: tuple[NumaCell, ...] = ()
    cpu_features: tuple[tuple[str, str], ...] = ()
    """(policy, name) pairs from ``<cpu><feature>``."""
    hyperv_mode: str | None = None
    """None when there is no ``<hyperv>`` element; else its ``mode`` (custom/passthrough)."""
    hyperv: tuple[HypervFeature, ...] = ()
    pmu: bool | None = None
    kvm_hidden: bool | None = None
    kvm_hint_dedicated: bool | None = None
    apic: bool = False
    timers: tuple[Timer, ...] = ()
    memory_backing: MemoryBacking | None = None
    memballoon: Memballoon | None = None
    """None when the XML has no memballoon (libvirt then adds a virtio one for QEMU guests)."""
    os_family: OsFamily = OsFamily.UNKNOWN
    os_id: str | None = None
    iothread_devices: tuple[IOThreadDevice, ...] = ()
    """Virtio disks and virtio-scsi controllers, in document order."""
    hostdev_pci: tuple[str, ...] = ()
    """PCI addresses of ``<hostdev type='pci'>`` devices, ``dddd:bb:ss.f``."""
    intent: Intent | None = None
    """vmtune's intent from ``<metadata>``; None when vmtune never tuned this guest."""
    running: bool = False

    @property
    def cell_memory_kib(self) -> int:
        """What the NUMA cells hold together: ``<memory>`` minus the memory devices' sizes."""
        return max(0, self.memory_kib - sum(d.size_kib for d in self.memory_devices))

    def pin_of(self, vcpu: int) -> CpuSet | None:
        pins = self.vcpupins
        # pins are read sorted by vCPU id and usually dense: then pin i is vCPU i, with no search
        if 0 <= vcpu < len(pins) and pins[vcpu].vcpu == vcpu:
            return pins[vcpu].cpus
        for pin in pins:
            if pin.vcpu == vcpu:
                return pin.cpus
        return None

    @property
    def vcpu_cpus(self) -> CpuSet:
        """Host CPUs the vCPUs may run on: the vcpupins, else ``vcpu/@cpuset`` (empty = floating)."""
        if self.vcpupins:
            return CpuSet().union(*(p.cpus for p in self.vcpupins))
        return self.vcpu_cpuset or CpuSet()

    def hyperv_feature(self, name: str) -> HypervFeature | None:
        for feat in self.hyperv:
            if feat.name == name:
                return feat
        return None

    def timer(self, name: str) -> Timer | None:
        for timer in self.timers:
            if timer.name == name:
                return timer
        return None


def iothread_ids(given: Sequence[int], count: int) -> tuple[int, ...]:
    """The ids libvirt gives ``count`` IOThreads: the ones ``<iothreadids>`` lists, then the lowest unused
    from 1 (``virDomainIOThreadIDDefArrayInit``); ``<iothreads>`` smaller than the list counts the list."""
    ids = list(dict.fromkeys(given))
    taken = set(ids)
    candidate = 1
    while len(ids) < count:
        if candidate not in taken:
            ids.append(candidate)
        candidate += 1
    return tuple(ids)
