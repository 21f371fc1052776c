"""Device-level tuning per profile: CPU mode/features, Hyper-V, PMU, timers, memory backing, balloon, RT.

``device_tuning`` is called by the planner once placement is decided (which host CPUs and nodes the
guest got); it decides the Plan fields that depend on the profile and on what the host can provide
(``HostCaps``), and explains every choice with a Note. Pure: no IO.
"""

from __future__ import annotations

from dataclasses import dataclass

from vmtune.core.caps import HostCaps
from vmtune.core.guest import GuestSpec, GuestTopology, Memballoon, MemoryBacking, Timer, VcpuPin, VcpuSched
from vmtune.core.intent import Resolved
from vmtune.core.plan import FeaturesPlan, Note
from vmtune.core.topology import Host
from vmtune.cpuset import CpuSet

__all__ = ["DeviceTuning", "device_tuning"]


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceTuning:
    """The Plan fields ``device_tuning`` decides (same meaning as in ``vmtune.core.plan.Plan``)."""

    cpu_mode: str | None = None
    cpu_features: tuple[tuple[str, str], ...] = ()
    features: FeaturesPlan | None = None
    timers: tuple[Timer, ...] | None = None
    memory_backing: MemoryBacking | None = None
    memballoon: Memballoon | None = None
    vcpusched: tuple[VcpuSched, ...] | None = None
    notes: tuple[Note, ...] = ()
    advice: tuple[str, ...] = ()


def device_tuning(
    *,
    host: Host,
    guest: GuestSpec,
    resolved: Resolved,
    caps: HostCaps | None,
    vcpu_cpus: CpuSet,
    emulator_cpus: CpuSet | None,
    nodes: CpuSet,
    vcpupins: tuple[VcpuPin, ...] = (),
    topology: GuestTopology | None = None,
) -> DeviceTuning:
    """Decide the profile-dependent device settings (stub: filled in by issue 5)."""
    del host, guest, resolved, caps, vcpu_cpus, emulator_cpus, nodes, vcpupins, topology
    return DeviceTuning()
