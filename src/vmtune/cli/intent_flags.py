"""The TUNING flags as data (``Tuning``) and their translation into an Intent; ``--domcapabilities``.

No typer here: the option declarations live in ``vmtune.cli.tuning``; ``vmtune plan`` reaches this
module without importing typer (see ``vmtune.cli.plan_fast``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vmtune.core.intent.model import (
    CoreKind,
    CpuPolicy,
    EmulatorPolicy,
    HypervMode,
    Intent,
    MemoryMode,
    OsFamily,
    Profile,
    ThreadPolicy,
)
from vmtune.cpuset import CpuSet
from vmtune.errors import InputError

if TYPE_CHECKING:
    from vmtune.core.topology.caps import HostCaps
    from vmtune.service import HostSource

__all__ = ["Tuning", "host_caps", "load_caps"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Tuning:
    """The raw TUNING flags; ``intent()`` validates them (InputError names the flag)."""

    profile: str | None = None
    cpu_policy: CpuPolicy | None = None
    thread_policy: ThreadPolicy | None = None
    emulator: EmulatorPolicy | None = None
    iothreads: int | None = None
    numa: str | None = None
    memory_mode: MemoryMode | None = None
    hugepages: str | None = None
    realtime_mask: str | None = None
    hyperv: HypervMode | None = None
    reserve: str | None = None
    os: OsFamily | None = None
    core_kind: CoreKind | None = None
    force: bool = False

    @property
    def given(self) -> bool:
        """True when any knob was set on the command line (else a stored intent is reused)."""
        return any(getattr(self, name) not in (None, False) for name in self.__slots__)

    def intent(self, stored: Intent | None = None) -> Intent:
        """The Intent these flags ask for; with no flags at all, the guest's stored intent wins."""
        if not self.given and stored is not None:
            return stored
        profiles: tuple[Profile, ...] = (Profile.BALANCED,)
        if self.profile is not None:
            try:
                profiles = tuple(Profile(p.strip()) for p in self.profile.split(",") if p.strip())
            except ValueError:
                choices = ", ".join(p.value for p in Profile)
                raise InputError(f"--profile {self.profile!r}: choose from {choices}") from None
            if not profiles:
                raise InputError("--profile: empty list")
        numa = (self.numa or "auto").strip().lower()
        if numa not in ("auto", "off") and not (numa.isdigit() and int(numa) >= 1):
            raise InputError(f"--numa {self.numa!r}: expected auto, off or a number of nodes >= 1")
        hugepages = self.hugepages
        if hugepages is not None:
            hugepages = {"2m": "2M", "1g": "1G", "none": "none"}.get(hugepages.strip().lower(), "")
            if not hugepages:
                raise InputError(f"--hugepages {self.hugepages!r}: expected 2M, 1G or none")
        if self.realtime_mask is not None:
            CpuSet.parse(self.realtime_mask, what="--realtime-mask")
        reserve = None if self.reserve is None else CpuSet.parse(self.reserve, what="--reserve")
        return Intent(
            profiles=profiles,
            cpu_policy=self.cpu_policy,
            thread_policy=self.thread_policy,
            emulator=self.emulator,
            iothreads=self.iothreads,
            numa=numa,
            memory_mode=self.memory_mode,
            hugepages=hugepages,
            realtime_mask=self.realtime_mask,
            hyperv=self.hyperv or HypervMode.AUTO,
            reserve=reserve,
            os=self.os,
            core_kind=self.core_kind,
            force=self.force,
        )


def load_caps(path: Path | None) -> HostCaps | None:
    """Parse ``--domcapabilities FILE`` (None when not given)."""
    if path is None:
        return None
    from vmtune.adapters.files import read_bytes
    from vmtune.xmlmap.domcaps import parse_domcapabilities

    return parse_domcapabilities(read_bytes(path), source=str(path))


def host_caps(src: HostSource, domcaps: Path | None) -> HostCaps | None:
    """``--domcapabilities FILE`` merged with what the host source itself tells (the file wins).

    * ``--capabilities FILE``: the host CPU's hypervisor flag (nested KVM);
    * the sysfs root (``/`` by default, or ``--sysfs ROOT``): the kernel probes under that root (APICv/AVIC,
      cgroup version and RT runtime, nesting from ``proc/cpuinfo``), so a captured tree is probed like the
      live host; a snapshot archive is not probed;
    * ``--connect URI``: the probes of ``/`` when the URI is local (the kernel that runs its guests).
    """
    from vmtune.adapters.probes import merge_caps, probe_host_caps

    parts: list[HostCaps | None] = [load_caps(domcaps)]
    if src.capabilities is not None:
        from vmtune.adapters.files import read_bytes
        from vmtune.xmlmap.capabilities import capabilities_caps

        parts.append(capabilities_caps(read_bytes(src.capabilities), source=str(src.capabilities)))
    elif src.connect is not None:
        from vmtune.adapters.libvirt import is_local

        if is_local(src.connect):
            parts.append(probe_host_caps(Path("/")))
    else:
        root = src.sysfs or Path("/")
        if root.is_dir():
            parts.append(probe_host_caps(root))
    return merge_caps(*parts)
