"""Tuning intent: what the operator asked for (profiles + knobs), stored in the domain's metadata.

Every knob is optional: None means "whatever the profiles say". ``vmtune.core.intent.profiles`` resolves an
Intent into concrete settings; the Intent itself is saved verbatim so a later hook run re-plans with the
same wishes, not with the old result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from vmtune.cpuset import CpuSet

__all__ = [
    "CoreKind",
    "CpuPolicy",
    "EmulatorPolicy",
    "HypervMode",
    "Intent",
    "MemoryMode",
    "OsFamily",
    "Profile",
    "Resolved",
    "ThreadPolicy",
]


class Profile(StrEnum):
    BALANCED = "balanced"
    LATENCY = "latency"
    REALTIME = "realtime"
    WINDOWS = "windows"


class CpuPolicy(StrEnum):
    """Nova's ``hw:cpu_policy`` vocabulary: one host CPU per vCPU, or a pool the vCPUs time-share."""

    DEDICATED = "dedicated"
    SHARED = "shared"


class ThreadPolicy(StrEnum):
    """Nova's ``hw:cpu_thread_policy`` vocabulary."""

    PREFER = "prefer"
    ISOLATE = "isolate"
    REQUIRE = "require"


class EmulatorPolicy(StrEnum):
    SHARE = "share"
    ISOLATE = "isolate"


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


@dataclass(frozen=True, slots=True, kw_only=True)
class Intent:
    profiles: tuple[Profile, ...] = (Profile.BALANCED,)
    cpu_policy: CpuPolicy | None = None
    """None: dedicated (every profile pins one host CPU per vCPU)."""
    thread_policy: ThreadPolicy | None = None
    emulator: EmulatorPolicy | None = None
    iothreads: int | None = None
    numa: str = "auto"
    """``auto``, ``off``, or a decimal number of host nodes to spread over."""
    memory_mode: MemoryMode | None = None
    hugepages: str | None = None
    """``2M``, ``1G``, ``none``, or None (profile decides)."""
    realtime_mask: str | None = None
    """libvirt cpuset syntax over vCPU ids (``^0``); None = profile default."""
    hyperv: HypervMode = HypervMode.AUTO
    reserve: CpuSet | None = None
    os: OsFamily | None = None
    core_kind: CoreKind | None = None
    force: bool = False

    def has(self, profile: Profile) -> bool:
        return profile in self.profiles


@dataclass(frozen=True, slots=True, kw_only=True)
class Resolved:
    """An Intent with the profiles' defaults filled in (``vmtune.core.intent.profiles.resolve``)."""

    cpu_policy: CpuPolicy = CpuPolicy.DEDICATED
    thread_policy: ThreadPolicy = ThreadPolicy.PREFER
    emulator: EmulatorPolicy = EmulatorPolicy.SHARE
    iothreads: int = 0
    numa: str = "auto"
    memory_mode: MemoryMode = MemoryMode.STRICT
    hugepages_kib: int | None = None
    """Hugepage size to back memory with (2048, 1048576), None for normal pages."""
    hugepages_if_free: bool = False
    """True when the profile wants hugepages only if the host has enough free (latency)."""
    realtime_vcpus: CpuSet = field(default_factory=CpuSet)
    """vCPU ids that get SCHED_FIFO (empty: no realtime)."""
    windows: bool = False
    hyperv: bool = False
    core_kind: CoreKind = CoreKind.ANY
    host_passthrough: bool = False
    reserve: CpuSet | None = None
    latency: bool = False
    realtime: bool = False
    hugepages_required: bool = False
    """Hugepages are a must (realtime, or an explicit ``--hugepages`` size): not enough free is infeasible."""
    hugepages_off: bool = False
    """``--hugepages none``: back memory with normal pages, removing ``<hugepages>``."""
    hyperv_off: bool = False
    """``--hyperv off``: remove ``<hyperv>`` and the hypervclock timer."""
    force: bool = False
