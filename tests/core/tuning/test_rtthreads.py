"""Realtime profile: <emulatorsched>/<iothreadsched> only for threads on CPUs of their own, and never on a
host whose cgroups give the guest no RT runtime."""

from __future__ import annotations

import pytest

from vmtune.core.guest import EmulatorSched, IOThreadPin, IOThreadSched, VcpuPin, VcpuSched
from vmtune.core.plan import Level, Plan
from vmtune.core.topology.caps import HostCaps
from vmtune.core.tuning.rtthreads import rt_helper_sched
from vmtune.cpuset import CpuSet

FIFO = (VcpuSched(vcpus=CpuSet([1, 2]), scheduler="fifo", priority=1),)
PINS = tuple(VcpuPin(vcpu=v, cpus=CpuSet([v + 1])) for v in range(3))  # vCPU 0 (housekeeping) on CPU 1
HK = CpuSet([0])
V2_OK = HostCaps(cgroup_version=2)
V1_NONE = HostCaps(cgroup_version=1, rt_runtime_us=0)


def plan(
    emulator: str | None, iothreads: tuple[str, ...] = (), vcpusched: tuple[VcpuSched, ...] = FIFO
) -> Plan:
    return Plan(
        vcpupins=PINS,
        vcpusched=vcpusched,
        emulatorpin=CpuSet.parse(emulator) if emulator else None,
        iothreadpins=tuple(
            IOThreadPin(iothread=i + 1, cpus=CpuSet.parse(c)) for i, c in enumerate(iothreads)
        ),
    )


F1 = EmulatorSched(scheduler="fifo", priority=1)


@pytest.mark.parametrize(
    ("the_plan", "caps", "realtime", "emulator", "iothreads"),
    [
        (
            plan("4", ("5", "6")),
            V2_OK,
            True,
            F1,
            (IOThreadSched(iothreads=CpuSet([1, 2]), scheduler="fifo", priority=1),),
        ),
        (
            plan("4", ("0", "5")),
            V2_OK,
            True,
            F1,
            (IOThreadSched(iothreads=CpuSet([2]), scheduler="fifo", priority=1),),
        ),
        (plan("1"), V2_OK, True, F1, None),  # the housekeeping vCPU's CPU is not an RT vCPU's
        (plan("0"), V2_OK, True, None, None),  # a housekeeping CPU: FIFO would outrank the host's tasks
        (plan("2-4"), V2_OK, True, None, None),  # shares an RT vCPU's CPU
        (plan(None), V2_OK, True, None, None),
        (
            plan("4", ("5",)),
            None,
            True,
            F1,
            (IOThreadSched(iothreads=CpuSet([1]), scheduler="fifo", priority=1),),
        ),
        (plan("4", ("5",)), V1_NONE, True, None, None),  # only --force got the vCPUs FIFO: add nothing
        (plan("4"), V2_OK, False, None, None),
        (plan("4", vcpusched=()), V2_OK, True, None, None),
    ],
    ids=[
        "own-cpus",
        "one-iothread-on-housekeeping",
        "on-housekeeping-vcpu",
        "housekeeping",
        "on-rt-vcpu",
        "unpinned",
        "caps-unknown",
        "no-rt-runtime",
        "not-realtime",
        "no-fifo-vcpus",
    ],
)
def test_where_fifo_helps(
    the_plan: Plan,
    caps: HostCaps | None,
    realtime: bool,
    emulator: EmulatorSched | None,
    iothreads: tuple[IOThreadSched, ...] | None,
) -> None:
    got_emulator, got_iothreads, notes = rt_helper_sched(
        the_plan, realtime=realtime, housekeeping=HK, caps=caps
    )
    assert (got_emulator, got_iothreads) == (emulator, iothreads)
    if caps is V1_NONE:
        assert [n.level for n in notes] == [Level.WARNING] and "VT406" in notes[0].message
