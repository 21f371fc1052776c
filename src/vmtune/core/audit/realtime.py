"""Realtime guest rules VT401-VT407.

Why (DESIGN.md): a realtime guest needs dedicated pinned cores, SCHED_FIFO vCPUs with at least one non-RT
vCPU for housekeeping, the emulator thread isolated off the RT cores, PMU off, no memballoon, locked
hugepage memory. Under cgroup v1 with ``cpu.rt_runtime_us=0`` in the machine slice, SCHED_FIFO vCPUs make
the start fail ("Cannot set scheduler parameters").
"""

from __future__ import annotations

from collections.abc import Iterator

from vmtune.core.audit.common import apply_cmd, emulator_off, names, vcpupin_xpath, vcpus_text
from vmtune.core.audit.engine import (
    AuditContext,
    Hit,
    claimed_cpus,
    guest_rule,
    is_realtime,
    realtime_vcpus,
)
from vmtune.core.guest import GuestSpec
from vmtune.core.intent.model import Settings
from vmtune.core.plan import Level
from vmtune.cpuset import CpuSet

__all__ = ["vt401", "vt402", "vt403", "vt404", "vt405", "vt406", "vt407"]


REALTIME: Settings = (("profiles", "realtime"),)


def _rt_fix(g: GuestSpec) -> str:
    return apply_cmd(g, settings=REALTIME)


_HOUSEKEEPING_VCPU: Settings = (*REALTIME, ("realtime_mask", "^0"))
_RT_EMULATOR_OFF: Settings = (*REALTIME, ("emulator", "isolate"))


@guest_rule("VT401", "FIFO/RR vCPUs not on dedicated cores", Level.ERROR)
def vt401(g: GuestSpec, ctx: AuditContext) -> Iterator[Hit]:
    rt = realtime_vcpus(g)
    if not rt:
        return
    host = ctx.host
    others = [(o, claimed_cpus(o, host)) for o in ctx.others(g)]
    floating: list[int] = []
    shared: list[int] = []
    rivals: list[GuestSpec] = []
    for vcpu in rt:
        pin = g.pin_of(vcpu)
        core = host.core_of(pin.first()) if pin else None
        if not pin or core is None or not pin.issubset(core.cpus):
            floating.append(vcpu)
            continue
        users = [o for o, cpus in others if not cpus.isdisjoint(core.cpus)]
        if users:
            shared.append(vcpu)
            rivals.extend(users)
    if floating:
        yield Hit(
            guest=g,
            location=vcpupin_xpath(floating[0]) if g.pin_of(floating[0]) else "/domain/cputune",
            message=f"realtime {vcpus_text(floating)} not pinned to one dedicated core each",
            fix=_rt_fix(g),
            settings=REALTIME,
        )
    if shared:
        yield Hit(
            guest=g,
            location=vcpupin_xpath(shared[0]),
            message=f"realtime {vcpus_text(shared)} on cores shared with {names(rivals)}",
            fix=_rt_fix(g),
            settings=REALTIME,
        )


@guest_rule("VT402", "PMU on", Level.WARNING)
def vt402(g: GuestSpec, ctx: AuditContext) -> Iterator[Hit]:
    if is_realtime(g) and g.pmu is not False:
        yield Hit(
            guest=g,
            location="/domain/features/pmu",
            message="realtime guest with the virtual PMU on (the default): PMU MSR traps add latency",
            fix=f"<features><pmu state='off'/></features>: {_rt_fix(g)}",
            settings=REALTIME,
        )


@guest_rule("VT403", "memballoon present", Level.WARNING)
def vt403(g: GuestSpec, ctx: AuditContext) -> Iterator[Hit]:
    if not is_realtime(g):
        return
    if g.memballoon is None or g.memballoon.model != "none":
        what = "a virtio memballoon" if g.memballoon is None else f"a {g.memballoon.model} memballoon"
        implicit = " (libvirt adds one when the XML has none)" if g.memballoon is None else ""
        yield Hit(
            guest=g,
            location="/domain/devices/memballoon",
            message=f"realtime guest with {what}{implicit}: ballooning faults and frees guest memory",
            fix=f"<memballoon model='none'/>: {_rt_fix(g)}",
            settings=REALTIME,
        )


@guest_rule("VT404", "memory not locked / no hugepages", Level.WARNING)
def vt404(g: GuestSpec, ctx: AuditContext) -> Iterator[Hit]:
    if not is_realtime(g):
        return
    mb = g.memory_backing
    missing = [
        what
        for what, ok in (
            ("hugepages", mb is not None and mb.hugepages),
            ("locked", mb is not None and mb.locked),
        )
        if not ok
    ]
    if missing:
        yield Hit(
            guest=g,
            location="/domain/memoryBacking",
            message=f"realtime guest memory without {' and '.join(missing)}: "
            "page faults and swap add latency",
            fix=f"<memoryBacking><hugepages/><locked/></memoryBacking>: {_rt_fix(g)}",
            settings=REALTIME,
        )


@guest_rule("VT405", "every vCPU realtime (no housekeeping vCPU)", Level.WARNING)
def vt405(g: GuestSpec, ctx: AuditContext) -> Iterator[Hit]:
    rt = realtime_vcpus(g)
    if rt and CpuSet.range(0, g.vcpus - 1).issubset(rt):
        yield Hit(
            guest=g,
            location="/domain/cputune/vcpusched",
            message=f"all {g.vcpus} vCPUs are realtime: none left for the guest's housekeeping",
            fix=f"keep vCPU 0 non-RT: {apply_cmd(g, settings=_HOUSEKEEPING_VCPU)}",
            settings=_HOUSEKEEPING_VCPU,
        )


@guest_rule("VT406", "host cgroup gives the machine slice no RT runtime", Level.ERROR)
def vt406(g: GuestSpec, ctx: AuditContext) -> Iterator[Hit]:
    caps = ctx.caps
    if not realtime_vcpus(g) or caps.cgroup_version != 1 or caps.rt_runtime_us != 0:
        return
    path = caps.rt_runtime_path or "/sys/fs/cgroup/cpu,cpuacct/machine.slice/cpu.rt_runtime_us"
    yield Hit(
        guest=g,
        location=f"host: {path}",
        message="cgroup v1 gives the machine slice no RT runtime: SCHED_FIFO vCPUs fail at start "
        '("Cannot set scheduler parameters")',
        fix=f"give it runtime (echo 950000 > {path}, after its parent cgroups) "
        "or boot with cgroup v2 (systemd.unified_cgroup_hierarchy=1)",
    )


@guest_rule("VT407", "emulator thread on RT cores", Level.ERROR)
def vt407(g: GuestSpec, ctx: AuditContext) -> Iterator[Hit]:
    rt = realtime_vcpus(g)
    if not rt:
        return
    rt_cores = CpuSet()
    for vcpu in rt:
        for cpu in g.pin_of(vcpu) or CpuSet():
            rt_cores = rt_cores | ctx.host.siblings(cpu) | CpuSet((cpu,))
    yield from emulator_off(
        g,
        rt_cores,
        fix=f"pin the emulator off the RT cores: {apply_cmd(g, settings=_RT_EMULATOR_OFF)}",
        settings=_RT_EMULATOR_OFF,
        unpinned="no <emulatorpin>: the emulator thread may run on the realtime cores and be starved",
        overlap=lambda shared: (
            f"emulator thread pinned to CPUs {shared} of the realtime cores: FIFO vCPUs starve it"
        ),
    )
