"""Profiles: turn an Intent (profiles + explicit knobs) into concrete settings (``Resolved``).

Explicit knobs always win over profile defaults. A knob's profile defaults are part of its declaration
(``Intent`` in ``vmtune.core.intent.model``); what is not one value per profile (hugepages by what is free,
Hyper-V by the OS) and the rules across knobs are the named steps below. Combining profiles takes the
stricter value of each knob (``latency,windows`` = latency placement + Windows enlightenments).
"""

from __future__ import annotations

from typing import Any

from vmtune.core.guest import GuestSpec, iothread_ids
from vmtune.core.intent.knob import Knob
from vmtune.core.intent.model import (
    KNOBS,
    CacheFit,
    CpuPolicy,
    HypervMode,
    Intent,
    OsFamily,
    PageSize,
    Profile,
    Resolved,
    ThreadPolicy,
    VcpuMask,
)
from vmtune.cpuset import CpuSet
from vmtune.errors import InputError

__all__ = ["active_profiles", "cache_fit_of", "resolve", "thread_policy_of"]

_KNOB = {k.name: k for k in KNOBS}


def active_profiles(intent: Intent) -> frozenset[Profile]:
    """The profiles whose defaults apply: realtime is latency and more, so it brings latency's."""
    extra = {Profile.LATENCY} if intent.has(Profile.REALTIME) else set()
    return frozenset(intent.profiles) | extra


def _pick(name: str, intent: Intent, active: frozenset[Profile]) -> Any:
    """The knob's explicit value, else what its declaration says the active profiles want."""
    knob: Knob[Any] = _KNOB[name]
    return knob.resolve(getattr(intent, name), active)


def cache_fit_of(intent: Intent) -> CacheFit:
    """``--cache-fit`` as the guest's plans were made: explicit, else its profiles' default."""
    fit: CacheFit = _pick("cache_fit", intent, active_profiles(intent))
    return fit


def thread_policy_of(intent: Intent) -> ThreadPolicy:
    """``--thread-policy`` as the guest's plans were made: explicit, else its profiles' default."""
    policy: ThreadPolicy = _pick("thread_policy", intent, active_profiles(intent))
    return policy


def resolve(intent: Intent, guest: GuestSpec) -> Resolved:
    """Fill in the profiles' defaults; raise InputError naming the flag when a knob can't apply."""
    active = active_profiles(intent)
    realtime = Profile.REALTIME in active
    latency = Profile.LATENCY in active
    os_family = intent.os or guest.os_family
    # The windows profile (timers) follows the OS even with --hyperv off: rtc/pit/hpet are not Hyper-V
    # features, and a Windows guest needs them whether or not the host can enlighten it.
    windows = intent.has(Profile.WINDOWS) or os_family is OsFamily.WINDOWS
    hyperv = intent.hyperv is HypervMode.ON or (intent.hyperv is HypervMode.AUTO and windows)

    cpu_policy = _pick("cpu_policy", intent, active)
    if cpu_policy is CpuPolicy.SHARED:
        _check_shared(intent, latency)
    if intent.realtime_mask is not None and not realtime:
        raise InputError("--realtime-mask: only meaningful with --profile realtime")
    dedicated = _dedicated_vcpus(intent, cpu_policy, guest)

    size = intent.hugepages
    # Unset under latency/realtime: the size is chosen by what the bound nodes have free (1G first);
    # realtime insists on hugepages (locked memory without page faults), latency falls back to normal pages.
    if_free = size is None and latency
    mask: VcpuMask | None = _pick("realtime_mask", intent, active)
    rt_vcpus = CpuSet() if mask is None else _realtime_vcpus(mask, intent, guest, dedicated)
    # libvirt keeps every IOThread <iothreadids> lists (vmtune never edits that list), so never fewer
    count = intent.iothreads if intent.iothreads is not None else guest.iothreads
    io_ids = iothread_ids(guest.iothread_given_ids, count)
    return Resolved(
        cpu_policy=cpu_policy,
        thread_policy=_pick("thread_policy", intent, active),
        emulator=_pick("emulator", intent, active),
        iothreads=len(io_ids),
        iothread_ids=io_ids,
        numa=intent.numa,
        numa_fit=_pick("numa_fit", intent, active),
        cache_fit=_pick("cache_fit", intent, active),
        memory_mode=_pick("memory_mode", intent, active),
        hugepages_kib=None if size is None else size.kib,
        hugepages_if_free=if_free,
        realtime_vcpus=rt_vcpus,
        dedicated_vcpus=dedicated,
        windows=windows,
        hyperv=hyperv,
        core_kind=_pick("core_kind", intent, active),
        host_passthrough=latency,
        reserve=intent.reserve,
        latency=latency,
        realtime=realtime,
        hugepages_required=(size is not None and size is not PageSize.NONE) or (if_free and realtime),
        hugepages_off=size is PageSize.NONE,
        hyperv_off=intent.hyperv is HypervMode.OFF,
        force=intent.force,
        isolate_host=bool(_pick("isolate_host", intent, active)),
        power_idle=intent.power_idle,
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


def _dedicated_vcpus(intent: Intent, policy: CpuPolicy, guest: GuestSpec) -> CpuSet | None:
    """``--cpu-policy mixed``: the vCPUs ``--dedicated-mask`` selects, at least one and not all (Nova's
    ``hw:cpu_dedicated_mask`` rules: all would be ``dedicated``, none ``shared``); None otherwise."""
    mask = intent.dedicated_mask
    if policy is not CpuPolicy.MIXED:
        if mask is not None:
            raise InputError("--dedicated-mask: only with --cpu-policy mixed")
        return None
    if mask is None:
        raise InputError(
            "--cpu-policy mixed: needs --dedicated-mask SPEC (the vCPUs that get dedicated cores)"
        )
    every = CpuSet.range(0, guest.vcpus - 1)
    chosen = mask.select(guest.vcpus)
    if chosen - every:
        raise InputError(f"--dedicated-mask: vCPU {chosen - every} not in the guest's vCPUs {every}")
    if not chosen:
        raise InputError(f"--dedicated-mask: '{mask}' selects no vCPU (that is --cpu-policy shared)")
    if chosen == every:
        raise InputError(f"--dedicated-mask: '{mask}' selects every vCPU (that is --cpu-policy dedicated)")
    return chosen


def _realtime_vcpus(mask: VcpuMask, intent: Intent, guest: GuestSpec, dedicated: CpuSet | None) -> CpuSet:
    """The vCPUs that get SCHED_FIFO: ``--realtime-mask`` over vCPU ids, default all but vCPU 0; under
    ``--cpu-policy mixed`` default the dedicated vCPUs, and an explicit mask must lie inside them (a
    FIFO vCPU on a time-shared CPU starves whatever else runs there).

    Keeping one vCPU non-RT matters: a guest whose every vCPU spins at FIFO priority starves its own
    housekeeping (timers, RCU, kworkers) and can lock up the host core it sits on.
    """
    if dedicated is not None:
        if intent.realtime_mask is None:
            return dedicated
        chosen = intent.realtime_mask.select(guest.vcpus)
        if chosen - dedicated:
            raise InputError(
                f"--realtime-mask: vCPU {chosen - dedicated} not in --dedicated-mask {intent.dedicated_mask} "
                f"(vCPUs {dedicated}): realtime vCPUs need dedicated cores"
            )
    every = CpuSet.range(0, guest.vcpus - 1)
    chosen = mask.select(guest.vcpus)
    outside = chosen - every
    if outside:
        raise InputError(f"--realtime-mask: vCPU {outside} not in the guest's vCPUs {every}")
    if not chosen:
        if intent.realtime_mask is None:
            raise InputError(
                f"--realtime-mask: {guest.name} has one vCPU, so the default '{mask}' leaves no realtime "
                "vCPU (give it more vCPUs, or pass --realtime-mask 0 --force)"
            )
        raise InputError(f"--realtime-mask: '{mask}' selects no vCPU")
    if chosen == every and not intent.force:
        raise InputError(
            "--realtime-mask: every vCPU would be realtime, leaving none for housekeeping "
            "(keep one non-RT vCPU, e.g. '^0', or pass --force)"
        )
    return chosen
