"""Profiles: turn an Intent (profiles + explicit knobs) into concrete settings (``Resolved``).

Explicit knobs always win over profile defaults. Combining profiles takes the stricter value of each
knob (``latency,windows`` = latency placement + Windows enlightenments).
"""

from __future__ import annotations

from vmtune.core.guest import GuestSpec
from vmtune.core.intent.model import (
    CoreKind,
    CpuPolicy,
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
    """Fill in the profiles' defaults; raise InputError naming the flag when a knob can't apply."""
    realtime = intent.has(Profile.REALTIME)
    latency = realtime or intent.has(Profile.LATENCY)
    os_family = intent.os or guest.os_family
    # The windows profile (timers) follows the OS even with --hyperv off: rtc/pit/hpet are not Hyper-V
    # features, and a Windows guest needs them whether or not the host can enlighten it.
    windows = intent.has(Profile.WINDOWS) or os_family is OsFamily.WINDOWS
    hyperv = intent.hyperv is HypervMode.ON or (intent.hyperv is HypervMode.AUTO and windows)

    cpu_policy = intent.cpu_policy or CpuPolicy.DEDICATED
    if cpu_policy is CpuPolicy.SHARED:
        _check_shared(intent, latency)
    thread_policy = intent.thread_policy or (ThreadPolicy.ISOLATE if latency else ThreadPolicy.PREFER)
    emulator = intent.emulator or (EmulatorPolicy.ISOLATE if latency else EmulatorPolicy.SHARE)

    hugepages_kib: int | None = None
    if_free = False
    required = False
    off = intent.hugepages == "none"
    if intent.hugepages is not None and not off:
        if intent.hugepages not in HUGEPAGE_SIZES:
            raise InputError(f"--hugepages: expected 2M, 1G or none, got {intent.hugepages!r}")
        hugepages_kib = HUGEPAGE_SIZES[intent.hugepages]
        required = True
    elif intent.hugepages is None and latency:
        # Both pick the size by what the bound nodes have free (1G first); realtime insists on
        # hugepages (locked memory without page faults), latency falls back to normal pages.
        if_free = True
        required = realtime

    realtime_vcpus = CpuSet()
    if realtime:
        realtime_vcpus = _realtime_vcpus(intent, guest)
    elif intent.realtime_mask is not None:
        raise InputError("--realtime-mask: only meaningful with --profile realtime")

    numa = intent.numa
    if numa not in ("auto", "off") and not numa.isdigit():
        raise InputError(f"--numa: expected auto, off or a number of nodes, got {numa!r}")

    return Resolved(
        cpu_policy=cpu_policy,
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
        hugepages_required=required,
        hugepages_off=off,
        hyperv_off=intent.hyperv is HypervMode.OFF,
        force=intent.force,
    )


def _check_shared(intent: Intent, latency: bool) -> None:
    """``--cpu-policy shared`` is time-sharing: the knobs that presume a CPU of one's own don't apply
    (Nova likewise rejects ``hw:cpu_thread_policy`` and ``hw:emulator_threads_policy`` without
    ``hw:cpu_policy=dedicated``)."""
    if latency:
        name = "realtime" if intent.has(Profile.REALTIME) else "latency"
        raise InputError(
            f"--cpu-policy shared: the {name} profile needs dedicated cores (drop --cpu-policy shared, "
            "or use --profile balanced/windows)"
        )
    if intent.thread_policy is not None:
        raise InputError(
            "--thread-policy: only with --cpu-policy dedicated (shared vCPUs have no cores of their own)"
        )
    if intent.emulator is not None:
        raise InputError(
            "--emulator: only with --cpu-policy dedicated (a shared guest's emulator floats with it)"
        )
    if intent.core_kind is not None:
        raise InputError("--core-kind: only with --cpu-policy dedicated")


def _realtime_vcpus(intent: Intent, guest: GuestSpec) -> CpuSet:
    """The vCPUs that get SCHED_FIFO: ``--realtime-mask`` over vCPU ids, default all but vCPU 0.

    A mask made only of exclusions (``^0``) is taken relative to all vCPUs, as libvirt's cpuset syntax
    reads it. Keeping one vCPU non-RT matters: a guest whose every vCPU spins at FIFO priority starves
    its own housekeeping (timers, RCU, kworkers) and can lock up the host core it sits on.
    """
    every = CpuSet.range(0, guest.vcpus - 1)
    mask = intent.realtime_mask if intent.realtime_mask is not None else "^0"
    items = [item.strip() for item in mask.split(",")]
    spec = mask if any(item and not item.startswith("^") for item in items) else f"0-{guest.vcpus - 1},{mask}"
    chosen = CpuSet.parse(spec, what="--realtime-mask")
    outside = chosen - every
    if outside:
        raise InputError(f"--realtime-mask: vCPU {outside} not in the guest's vCPUs {every}")
    if not chosen:
        if intent.realtime_mask is None:
            raise InputError(
                f"--realtime-mask: {guest.name} has one vCPU, so the default '^0' leaves no realtime vCPU "
                "(give it more vCPUs, or pass --realtime-mask 0 --force)"
            )
        raise InputError(f"--realtime-mask: {mask!r} selects no vCPU")
    if chosen == every and not intent.force:
        raise InputError(
            "--realtime-mask: every vCPU would be realtime, leaving none for housekeeping "
            "(keep one non-RT vCPU, e.g. '^0', or pass --force)"
        )
    return chosen
