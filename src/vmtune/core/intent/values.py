"""The types a tuning knob takes: libvirt/Nova vocabularies as StrEnums, and the few values with a shape.

Each type parses its text form (``parse``, raising ``ValueError`` with a reason) and prints it back
(``str``), so a knob written to the metadata reads back as the same value.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from vmtune.cpuset import CpuSet
from vmtune.errors import InputError

__all__ = [
    "MAX_IOTHREADS",
    "CacheShare",
    "CoreKind",
    "CpuPolicy",
    "EmulatorPolicy",
    "Fit",
    "HypervMode",
    "MemoryMode",
    "Numa",
    "OsFamily",
    "PageSize",
    "PowerIdle",
    "Profile",
    "ThreadPolicy",
    "VcpuMask",
    "format_profiles",
    "parse_iothreads",
    "parse_profiles",
]

MAX_IOTHREADS = 1024
"""The most ``--iothreads`` vmtune creates: QEMU's VIRTIO_QUEUE_MAX, the most virtqueues one virtio device has
to spread over IOThreads; libvirt sets no limit, and each IOThread beyond is an idle host thread."""


class Profile(StrEnum):
    BALANCED = "balanced"
    LATENCY = "latency"
    REALTIME = "realtime"
    WINDOWS = "windows"


class CpuPolicy(StrEnum):
    """Nova's ``hw:cpu_policy`` vocabulary: one host CPU per vCPU, a pool the vCPUs time-share, or both
    (``mixed``: the vCPUs of ``--dedicated-mask`` own cores, the others float over the shared pool)."""

    DEDICATED = "dedicated"
    SHARED = "shared"
    MIXED = "mixed"


class ThreadPolicy(StrEnum):
    """Nova's ``hw:cpu_thread_policy`` vocabulary."""

    PREFER = "prefer"
    ISOLATE = "isolate"
    REQUIRE = "require"


class EmulatorPolicy(StrEnum):
    SHARE = "share"
    ISOLATE = "isolate"


class Fit(StrEnum):
    """``--numa-fit``: pack a guest into the fullest node that holds it (Nova's
    ``packing_host_numa_cells_allocation_strategy``, kubelet's packed policy), or spread guests over
    nodes for memory bandwidth (kubelet's ``distribute-cpus-across-numa``)."""

    PACK = "pack"
    SPREAD = "spread"


class CacheFit(StrEnum):
    """``--cache-fit``: how a guest's cores sit in the host's cache groups (CCX/CCD L3s, L2 clusters).

    ``pack`` fills the fullest group that holds the guest, sharing it with other guests so that idle
    groups stay whole for wide guests (kubelet's uncore-cache alignment does the same); ``own`` never
    takes a group another guest uses while an idle group of its node(s) could hold it (a guest that
    would rather not share an L3 than keep groups whole for others; the latency profiles' default);
    ``spread`` puts a core per group in turn, for memory-bandwidth-bound guests."""

    PACK = "pack"
    SPREAD = "spread"
    OWN = "own"


class MemoryMode(StrEnum):
    """libvirt ``<numatune><memory mode=...>`` literals."""

    STRICT = "strict"
    PREFERRED = "preferred"
    INTERLEAVE = "interleave"
    RESTRICTIVE = "restrictive"


class HypervMode(StrEnum):
    AUTO = "auto"
    ON = "on"
    OFF = "off"


class OsFamily(StrEnum):
    WINDOWS = "windows"
    LINUX = "linux"
    OTHER = "other"
    UNKNOWN = "unknown"


class CoreKind(StrEnum):
    BIG = "big"
    LITTLE = "little"
    ANY = "any"


class PageSize(StrEnum):
    """The hugepage size to back guest memory with; ``none`` asks for normal pages."""

    HUGE_2M = "2M"
    HUGE_1G = "1G"
    NONE = "none"

    @property
    def kib(self) -> int | None:
        """The page size in KiB as sysfs and libvirt count it; None for normal pages."""
        return {"2M": 2048, "1G": 1048576}.get(self.value)

    @classmethod
    def parse(cls, text: str) -> PageSize:
        """Case-insensitive, as sizes are written both ways (``2m``, ``2M``)."""
        for size in cls:
            if size.value.lower() == text.strip().lower():
                return size
        raise ValueError("expected 2M, 1G or none")


@dataclass(frozen=True, slots=True, kw_only=True)
class Numa:
    """How many host NUMA nodes to spread over: ``auto`` (the planner picks), ``off`` (no binding), or N."""

    nodes: int | None = None
    off: bool = False

    def __post_init__(self) -> None:
        if self.nodes is not None and (self.off or self.nodes < 1):
            raise InputError(f"Numa: nodes={self.nodes} needs off=False and nodes >= 1")

    def __str__(self) -> str:
        return "off" if self.off else "auto" if self.nodes is None else str(self.nodes)

    @classmethod
    def parse(cls, text: str) -> Numa:
        clean = text.strip().lower()
        if clean in ("auto", "off"):
            return cls(off=clean == "off")
        if clean.isdigit() and int(clean) >= 1:
            return cls(nodes=int(clean))
        raise ValueError("expected auto, off or a number of nodes >= 1")


@dataclass(frozen=True, slots=True, kw_only=True)
class CacheShare:
    """Exclusive last-level cache for the guest: a share of each cache (``25%``), a number of ways (``3``,
    resctrl's capacity bitmask bits), or ``none`` (no ``<cachetune>``: vmtune removes its own)."""

    percent: int | None = None
    ways: int | None = None

    def __post_init__(self) -> None:
        if self.percent is not None and (self.ways is not None or not 1 <= self.percent <= 99):
            raise InputError(f"CacheShare: percent={self.percent} needs ways=None and 1..99")
        if self.ways is not None and self.ways < 1:
            raise InputError(f"CacheShare: ways={self.ways} must be >= 1")

    @property
    def off(self) -> bool:
        return self.percent is None and self.ways is None

    def __str__(self) -> str:
        if self.percent is not None:
            return f"{self.percent}%"
        return "none" if self.ways is None else str(self.ways)

    @classmethod
    def parse(cls, text: str) -> CacheShare:
        clean = text.strip().lower()
        if clean in ("none", "off"):
            return cls()
        if clean.endswith("%") and clean[:-1].strip().isdigit():
            percent = int(clean[:-1])
            if not 1 <= percent <= 99:
                raise ValueError("a share from 1% to 99% (the host keeps some ways)")
            return cls(percent=percent)
        count = clean.removesuffix("ways").strip()
        if count.isdigit() and int(count) >= 1:
            return cls(ways=int(count))
        raise ValueError("expected a share (25%), a number of cache ways (3), or none")


@dataclass(frozen=True, slots=True, kw_only=True)
class VcpuMask:
    """vCPU ids in libvirt's cpuset syntax. A mask made only of exclusions (``^0``) is taken relative to
    all the guest's vCPUs, as libvirt reads it, so it stays meaningful whatever the vCPU count."""

    vcpus: CpuSet
    all_but: bool = False
    """True: every vCPU except ``vcpus`` (the ``^0`` form)."""

    def select(self, count: int) -> CpuSet:
        """The vCPU ids this mask picks for a guest of ``count`` vCPUs."""
        return CpuSet.range(0, count - 1) - self.vcpus if self.all_but else self.vcpus

    def __str__(self) -> str:
        if not self.all_but:
            return str(self.vcpus)
        return ",".join(f"^{a}" if a == b else f"^{a}-{b}" for a, b in self.vcpus.ranges())

    @classmethod
    def parse(cls, text: str) -> VcpuMask:
        items = [item.strip() for item in text.split(",")]
        if not text.strip():
            raise ValueError("expected vCPU ids in cpuset syntax (e.g. ^0 or 2-5)")
        all_but = all(item.startswith("^") for item in items)
        spec = ",".join(item[1:] for item in items) if all_but else text
        what = "vCPU list"
        try:
            vcpus = CpuSet.parse(spec, what=what)
        except InputError as err:
            raise ValueError(str(err).removeprefix(f"{what}: ")) from None
        if not vcpus and not all_but:
            raise ValueError("selects no vCPU")
        return cls(vcpus=vcpus, all_but=all_but)


def parse_profiles(text: str) -> tuple[Profile, ...]:
    """A comma-separated list (``latency,windows``); the profiles combine (see ``profiles.resolve``)."""
    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    if not names:
        raise ValueError("empty list")
    try:
        return tuple(Profile(name) for name in names)
    except ValueError:
        raise ValueError(f"choose from {', '.join(p.value for p in Profile)}") from None


def format_profiles(profiles: tuple[Profile, ...]) -> str:
    return ",".join(p.value for p in profiles)


def parse_iothreads(text: str) -> int:
    """A number of IOThreads, 0 to ``MAX_IOTHREADS``."""
    clean = text.strip()
    if not clean.isdigit():
        raise ValueError("expected a whole number >= 0")
    if int(clean) > MAX_IOTHREADS:
        raise ValueError(
            f"at most {MAX_IOTHREADS} IOThreads (QEMU's most virtqueues per device; more would sit idle)"
        )
    return int(clean)


GOVERNOR_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_-")
"""What a cpufreq governor name is made of (``scaling_available_governors``): the hook writes the name to
sysfs as root, so anything else is refused before it gets there."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PowerIdle:
    """What a guest's dedicated cores become once it stops: a cpufreq governor, or offline (Nova's
    ``cpu_power_management``: an offline core saves the few watts an idle one still draws)."""

    governor: str | None = None
    offline: bool = False

    def __post_init__(self) -> None:
        if (self.governor is None) == (not self.offline):
            raise InputError("PowerIdle: a governor or offline, exactly one")

    @classmethod
    def parse(cls, text: str) -> PowerIdle:
        clean = text.strip()
        if clean == "offline":
            return cls(offline=True)
        kind, _, name = clean.partition(":")
        if kind != "governor" or not name:
            raise ValueError("expected governor:NAME or offline")
        if len(name) > 15 or not set(name) <= GOVERNOR_CHARS:
            raise ValueError(f"governor {name!r}: a cpufreq governor name is [a-z0-9_-], at most 15 chars")
        return cls(governor=name)

    def __str__(self) -> str:
        return "offline" if self.offline else f"governor:{self.governor}"
