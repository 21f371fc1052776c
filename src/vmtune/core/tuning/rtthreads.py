"""Realtime profile: SCHED_FIFO for the emulator thread and IOThreads where they have CPUs of their own. Pure.

libvirt's realtime guide (docs/kbase/kvm-realtime.rst) and KubeVirt give only the vCPUs a realtime
policy, with QEMU's other threads on housekeeping CPUs at SCHED_OTHER, and that is right there: a FIFO
thread on a housekeeping CPU outranks every host task on it. Where ``--emulator isolate`` gave the
emulator thread and the IOThreads CPUs that are neither housekeeping nor a realtime vCPU's, nothing of
the host's should run there, and FIFO (``<emulatorsched>``, ``<iothreadsched>``) keeps a stray host task
from delaying the virtio completions the FIFO vCPUs wait on. The priority is the vCPUs' own
(``RT_PRIORITY``): the kernel's RT threads still preempt them. Like ``<vcpusched>``, they need RT runtime
in the guest's cgroup (VT406): on a host that has none they are left out, so they never add a reason for
the start to fail.
"""

from __future__ import annotations

from collections.abc import Sequence

from vmtune.core.guest import EmulatorSched, IOThreadSched, VcpuSched
from vmtune.core.plan import Level, Note, Plan
from vmtune.core.topology.caps import HostCaps
from vmtune.core.tuning.devices import RT_PRIORITY
from vmtune.cpuset import CpuSet

__all__ = ["PIT_PRIORITY", "RT_SCHEDULERS", "pit_cpus", "pit_raised", "rt_helper_sched"]

RT_SCHEDULERS = frozenset({"fifo", "rr"})
PIT_PRIORITY = 2
"""SCHED_FIFO priority of a realtime guest's ``kvm-pit/<qemu pid>`` kernel thread, as KubeVirt sets it:
above the FIFO vCPUs (1), so the timer ticks it injects are not held back by the vCPU it shares a CPU
with."""


def pit_cpus(vcpu0: CpuSet | None, vcpus: CpuSet | None) -> CpuSet | None:
    """Where the hook pins a raised PIT thread and ``verify`` expects it: vCPU 0's CPUs (the vCPU its
    timer interrupts mostly go to), else wherever the vCPUs may run; None: left where it is."""
    return vcpu0 or vcpus or None


def pit_raised(vcpusched: Sequence[VcpuSched], *, wants_realtime: bool) -> bool:
    """The one rule the hook raises KVM's PIT thread by and ``verify`` judges it by: the guest's vCPUs
    are realtime-scheduled, or its stored intent asks for realtime (the PIT thread is a kernel thread in
    the root cgroup, so it can get FIFO where the vCPUs' cgroup v1 group has no RT budget)."""
    return wants_realtime or any(s.scheduler in RT_SCHEDULERS for s in vcpusched)


def _no_rt_runtime(caps: HostCaps | None) -> bool:
    """cgroup v1 gives the machine slice no RT runtime (the vCPUs' FIFO only got in with ``--force``)."""
    return caps is not None and caps.cgroup_version == 1 and caps.rt_runtime_us == 0


def rt_helper_sched(
    plan: Plan, *, realtime: bool, housekeeping: CpuSet, caps: HostCaps | None
) -> tuple[EmulatorSched | None, tuple[IOThreadSched, ...] | None, tuple[Note, ...]]:
    """(``<emulatorsched>``, ``<iothreadsched>``, why) for a planned realtime guest; None: left alone."""
    rt_vcpus = CpuSet().union(*(s.vcpus for s in plan.vcpusched or () if s.scheduler in RT_SCHEDULERS))
    if not realtime or not rt_vcpus:
        return None, None, ()
    if _no_rt_runtime(caps):
        note = Note(
            topic="rt",
            level=Level.WARNING,
            xpath="/domain/cputune/emulatorsched",
            message="emulator and IOThreads left SCHED_OTHER: this host gives the guest's cgroup no "
            "RT runtime (VT406)",
        )
        return None, None, (note,)
    rt_cpus = CpuSet().union(*(p.cpus for p in plan.vcpupins or () if p.vcpu in rt_vcpus))
    busy = rt_cpus | housekeeping
    notes: list[Note] = []
    emulator = None
    emu = plan.emulatorpin
    if emu and emu.isdisjoint(busy):
        emulator = EmulatorSched(scheduler="fifo", priority=RT_PRIORITY)
        notes.append(
            Note(
                topic="rt",
                xpath="/domain/cputune/emulatorsched",
                message=f"emulator thread SCHED_FIFO priority {RT_PRIORITY} on its own CPU {emu}: no "
                "host task delays the I/O the realtime vCPUs wait on",
            )
        )
    else:
        where = "unpinned" if not emu else f"on CPUs {emu}, shared with housekeeping or realtime vCPUs"
        notes.append(
            Note(
                topic="rt",
                message=f"emulator thread stays SCHED_OTHER ({where}): a FIFO emulator "
                "would outrank the host's tasks there",
            )
        )
    own = CpuSet(p.iothread for p in plan.iothreadpins or () if p.cpus and p.cpus.isdisjoint(busy))
    iothreads: tuple[IOThreadSched, ...] | None = None
    if own:
        iothreads = (IOThreadSched(iothreads=own, scheduler="fifo", priority=RT_PRIORITY),)
        notes.append(
            Note(
                topic="rt",
                xpath="/domain/cputune/iothreadsched",
                message=f"IOThread(s) {own} SCHED_FIFO priority {RT_PRIORITY} on CPUs of their own",
            )
        )
    return emulator, iothreads, tuple(notes)
