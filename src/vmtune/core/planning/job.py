"""What every step of one ``plan_guest`` call reads (``Job``), and the small helpers the plans share."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from vmtune.core.guest import GuestSpec, GuestTopology
from vmtune.core.intent.model import Intent, Resolved
from vmtune.core.ledger.pool import Ledger
from vmtune.core.plan import CpuPlan, Plan
from vmtune.core.topology.caps import HostCaps
from vmtune.core.topology.model import Host
from vmtune.core.tuning.devices import DeviceTuning

__all__ = ["Job", "merge_tuning", "seen_topology"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Job:
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


def seen_topology(guest: GuestSpec) -> GuestTopology:
    """The topology the guest has, or the one libvirt gives it without ``<topology>``: a core per vCPU."""
    return guest.topology or GuestTopology(sockets=guest.vcpus, cores=1, threads=1)


def merge_tuning(plan: Plan, tuning: DeviceTuning) -> Plan:
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
