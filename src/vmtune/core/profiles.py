"""Profiles: turn an Intent (profiles + explicit knobs) into concrete settings (``Resolved``).

Explicit knobs always win over profile defaults. Combining profiles takes the stricter value of each
knob (``latency,windows`` = latency placement + Windows enlightenments).
"""

from __future__ import annotations

from vmtune.core.guest import GuestSpec
from vmtune.core.intent import (
    CoreKind,
    EmulatorPolicy,
    HypervMode,
    Intent,
    MemoryMode,
    OsFamily,
    Profile,
    Resolved,
    ThreadPolicy,
)
from vmtune.cpuset import CpuSet
from vmtune.errors import InputError

__all__ = ["HUGEPAGE_SIZES", "resolve"]

HUGEPAGE_SIZES = {"2M": 2048, "1G": 1048576}


def resolve(intent: Intent, guest: GuestSpec) -> Resolved:
    realtime = intent.has(Profile.REALTIME)
    latency = realtime or intent.has(Profile.LATENCY)
    os_family = intent.os or guest.os_family
    windows = intent.has(Profile.WINDOWS) or (
        intent.hyperv is HypervMode.AUTO and os_family is OsFamily.WINDOWS
    )
    hyperv = intent.hyperv is HypervMode.ON or (intent.hyperv is HypervMode.AUTO and windows)

    thread_policy = intent.thread_policy or (ThreadPolicy.ISOLATE if latency else ThreadPolicy.PREFER)
    emulator = intent.emulator or (EmulatorPolicy.ISOLATE if latency else EmulatorPolicy.SHARE)

    hugepages_kib: int | None = None
    if_free = False
    if intent.hugepages is not None and intent.hugepages != "none":
        if intent.hugepages not in HUGEPAGE_SIZES:
            raise InputError(f"--hugepages: expected 2M, 1G or none, got {intent.hugepages!r}")
        hugepages_kib = HUGEPAGE_SIZES[intent.hugepages]
    elif intent.hugepages is None and latency:
        # realtime insists on hugepages (locked, no faults); latency takes them when the host has them
        hugepages_kib = None
        if_free = True

    realtime_vcpus = CpuSet()
    if realtime:
        mask = intent.realtime_mask or "^0"
        spec = mask if not mask.startswith("^") else f"0-{guest.vcpus - 1},{mask}"
        realtime_vcpus = CpuSet.parse(spec, what="--realtime-mask") & CpuSet.range(0, guest.vcpus - 1)
        if len(realtime_vcpus) == guest.vcpus and not intent.force:
            raise InputError(
                "--realtime-mask: every vCPU would be realtime, leaving none for housekeeping "
                "(keep one non-RT vCPU, e.g. '^0', or pass --force)"
            )

    numa = intent.numa
    if numa not in ("auto", "off") and not numa.isdigit():
        raise InputError(f"--numa: expected auto, off or a number of nodes, got {numa!r}")

    return Resolved(
        thread_policy=thread_policy,
        emulator=emulator,
        iothreads=intent.iothreads if intent.iothreads is not None else guest.iothreads,
        numa=numa,
        memory_mode=intent.memory_mode or MemoryMode.STRICT,
        hugepages_kib=hugepages_kib,
        hugepages_if_free=if_free,
        realtime_vcpus=realtime_vcpus,
        windows=windows,
        hyperv=hyperv,
        core_kind=intent.core_kind or (CoreKind.BIG if latency else CoreKind.ANY),
        host_passthrough=latency,
        reserve=intent.reserve,
        latency=latency,
        realtime=realtime,
    )
