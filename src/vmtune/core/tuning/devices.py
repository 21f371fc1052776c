"""Device-level tuning per profile: CPU mode/features, Hyper-V, PMU, timers, memory backing, balloon, RT.

``device_tuning`` is called by the planner once placement is decided (which host CPUs and nodes the
guest got); it decides the Plan fields that depend on the profile and on what the host can provide
(``HostCaps``), and explains every choice with a Note. Pure: no IO.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from vmtune.core.guest import GuestSpec, GuestTopology, Memballoon, MemoryBacking, Timer, VcpuPin, VcpuSched
from vmtune.core.intent.model import Resolved
from vmtune.core.plan import FeaturesPlan, Level, Note
from vmtune.core.topology.caps import HostCaps
from vmtune.core.topology.model import Host
from vmtune.core.tuning.advice import host_advice
from vmtune.core.tuning.hugepages import memory_tuning
from vmtune.core.tuning.hyperv import hyperv_tuning
from vmtune.core.tuning.nested import nested_cpu_features
from vmtune.cpuset import CpuSet
from vmtune.errors import InfeasibleError

__all__ = ["DEFAULT_RT_RUNTIME_PATH", "RT_PRIORITY", "DeviceTuning", "device_tuning", "host_vendor"]

RT_PRIORITY = 1
"""Lowest FIFO priority: above every SCHED_OTHER task, below the kernel's own RT threads (migration,
watchdog, irq threads at 50), which must still preempt a spinning vCPU."""

DEFAULT_RT_RUNTIME_PATH = "/sys/fs/cgroup/cpu,cpuacct/machine.slice/cpu.rt_runtime_us"
_PASSTHROUGH = ("host-passthrough", "maximum")


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
    memory_shares: Mapping[int, int] | None = None,
) -> DeviceTuning:
    """Decide the profile-dependent device settings for a guest placed on ``vcpu_cpus`` / ``nodes``.

    ``vcpupins`` (the planned per-vCPU pins) lets the realtime checks tell the RT vCPUs' cores from the
    housekeeping vCPU's; ``topology`` is the planned guest topology (default: the guest's current one).
    Raises InfeasibleError when required hugepages are not free (see ``vmtune.core.tuning.hugepages``), or
    when realtime vCPUs would get no RT runtime on this host (cgroup v1), unless ``--force``.
    """
    notes: list[Note] = []
    vendor = host_vendor(host, caps)
    cpu_mode = _cpu_mode(guest, resolved, caps, notes)
    effective_mode = cpu_mode or guest.cpu_mode
    cpu_features = _topoext(guest, topology or guest.topology, vendor, effective_mode, notes)
    if resolved.host_passthrough:
        # latency/realtime pick a host CPU mode; where KVM refuses MSR 0x10a it needs arch-capabilities off
        cpu_features += nested_cpu_features(guest=guest, caps=caps, mode=effective_mode, notes=notes)
    win = hyperv_tuning(guest=guest, caps=caps, vendor=vendor, enlighten=resolved.hyperv,
                        remove=resolved.hyperv_off, timers=resolved.windows)  # fmt: skip
    notes.extend(win.notes)
    pmu, hint = _realtime_features(guest, resolved, effective_mode, notes)
    features = None
    if win.hyperv is not None or pmu is not None or hint is not None:
        features = FeaturesPlan(hyperv=win.hyperv, pmu=pmu, kvm_hint_dedicated=hint)
    mem = memory_tuning(host=host, guest=guest, resolved=resolved, nodes=nodes, shares=memory_shares)
    notes.extend(mem.notes)
    memballoon = _memballoon(guest, resolved, notes)
    vcpusched = _vcpusched(guest=guest, resolved=resolved, caps=caps, vcpu_cpus=vcpu_cpus,
                           emulator_cpus=emulator_cpus, vcpupins=vcpupins, notes=notes)  # fmt: skip
    advice = host_advice(host=host, resolved=resolved, caps=caps, vcpu_cpus=vcpu_cpus, vendor=vendor,
                         shortfall=mem.shortfall)  # fmt: skip
    return DeviceTuning(
        cpu_mode=cpu_mode,
        cpu_features=cpu_features,
        features=features,
        timers=win.timers,
        memory_backing=mem.memory_backing,
        memballoon=memballoon,
        vcpusched=vcpusched,
        notes=tuple(notes),
        advice=advice,
    )


def host_vendor(host: Host, caps: HostCaps | None) -> str | None:
    """``Intel`` / ``AMD`` / ... from domcapabilities' host-model, else the topology source."""
    raw = (caps.cpu_vendor if caps is not None else None) or host.vendor
    if raw is None:
        return None
    return {"GenuineIntel": "Intel", "AuthenticAMD": "AMD", "HygonGenuine": "Hygon"}.get(raw, raw)


def _cpu_mode(guest: GuestSpec, resolved: Resolved, caps: HostCaps | None, notes: list[Note]) -> str | None:
    if not resolved.host_passthrough:
        return None
    xpath = "/domain/cpu/@mode"
    if guest.cpu_mode in _PASSTHROUGH:
        return None
    if guest.domain_type != "kvm" or (caps is not None and caps.domain_type not in (None, "kvm")):
        notes.append(Note(topic="cpu", message=f"{guest.domain_type} (not kvm) guest: host-passthrough needs "
                          "KVM, CPU model left alone", xpath=xpath))  # fmt: skip
        return None
    if caps is not None and caps.cpu_modes is not None and "host-passthrough" not in caps.cpu_modes:
        notes.append(
            Note(
                topic="cpu",
                level=Level.WARNING,
                message=f"{caps.source or 'domcapabilities'} does not support host-passthrough: "
                "CPU model left alone",
                xpath=xpath,
            )
        )
        return None
    notes.append(
        Note(
            topic="cpu",
            message="host-passthrough CPU: the guest sees the host's exact CPU (TSC deadline timer, "
            "invariant TSC, every ISA extension); live migration then needs an identical host CPU",
            xpath=xpath,
        )
    )
    return "host-passthrough"


def _topoext(
    guest: GuestSpec,
    topology: GuestTopology | None,
    vendor: str | None,
    mode: str | None,
    notes: list[Note],
) -> tuple[tuple[str, str], ...]:
    """AMD guests only see SMT threads when CPUID advertises topoext (leaf 0x8000001E); host-passthrough
    copies it from the host, but named models (EPYC-*) and host-model may leave it out, and then Linux and
    Windows count every thread as a core of its own."""
    if topology is None or topology.threads < 2 or vendor not in ("AMD", "Hygon") or mode in _PASSTHROUGH:
        return ()
    if mode != "host-model" and guest.cpu_model is None:
        notes.append(
            Note(
                topic="cpu",
                level=Level.WARNING,
                message=f"SMT guest ({topology.threads} threads/core) on an {vendor} host without a CPU "
                "model: add host-model or a model so vmtune can require topoext (libvirt refuses features "
                "without a model)",
                xpath="/domain/cpu",
            )
        )
        return ()
    if ("require", "topoext") not in guest.cpu_features:
        notes.append(
            Note(
                topic="cpu",
                message=f"require topoext: {vendor} CPU model {guest.cpu_model or mode} with "
                f"{topology.threads} threads/core, so the guest sees the SMT siblings it was given",
                xpath="/domain/cpu/feature[@name='topoext']",
            )
        )
    return (("require", "topoext"),)


def _realtime_features(
    guest: GuestSpec, resolved: Resolved, mode: str | None, notes: list[Note]
) -> tuple[bool | None, bool | None]:
    if not resolved.realtime:
        return None, None
    if guest.pmu is not False:
        notes.append(
            Note(
                topic="rt",
                message="PMU off: a virtual PMU makes every perf counter access and overflow a VM exit "
                "(VT402)",
                xpath="/domain/features/pmu",
            )
        )
    hint: bool | None = None
    if resolved.dedicated_vcpus is not None:
        # a mixed guest's shared vCPUs do get preempted: PV spinlocks and halting must stay on
        say = "kvm hint-dedicated left off: the shared vCPUs of a mixed guest are preempted like any thread"
        notes.append(Note(topic="rt", message=say))
    elif mode == "host-passthrough":
        hint = True
        notes.append(
            Note(
                topic="rt",
                message="kvm hint-dedicated: tells the guest its vCPUs own their cores (no PV spinlocks, "
                "idle polling instead of halting)",
                xpath="/domain/features/kvm/hint-dedicated",
            )
        )
    else:
        # libvirt refuses it otherwise: "kvm-hint-dedicated=on is only applicable for cpu host-passthrough"
        notes.append(
            Note(
                topic="rt",
                level=Level.WARNING,
                message=f"kvm hint-dedicated left out: libvirt allows it only with host-passthrough "
                f"(CPU mode here: {mode or 'default'})",
            )
        )
    return False, hint


def _memballoon(guest: GuestSpec, resolved: Resolved, notes: list[Note]) -> Memballoon | None:
    xpath = "/domain/devices/memballoon"
    cur = guest.memballoon
    if resolved.realtime:
        if cur is not None and cur.model == "none":
            return None
        notes.append(
            Note(
                topic="memory",
                message="memballoon model none: no balloon driver reclaiming or faulting guest memory, no "
                "stats polling on a realtime guest (VT403)",
                xpath=xpath,
            )
        )
        return Memballoon(model="none")
    if resolved.latency and cur is not None and (cur.autodeflate or cur.freepage_reporting):
        notes.append(
            Note(
                topic="memory",
                message="memballoon kept, but autodeflate and free page reporting off: both hand memory "
                "back and forth at run time, and each refault costs the guest latency",
                xpath=xpath,
            )
        )
        return Memballoon(
            model=cur.model,
            autodeflate=False if cur.autodeflate else cur.autodeflate,
            freepage_reporting=False if cur.freepage_reporting else cur.freepage_reporting,
        )
    return None


def _vcpusched(
    *,
    guest: GuestSpec,
    resolved: Resolved,
    caps: HostCaps | None,
    vcpu_cpus: CpuSet,
    emulator_cpus: CpuSet | None,
    vcpupins: tuple[VcpuPin, ...],
    notes: list[Note],
) -> tuple[VcpuSched, ...] | None:
    if not resolved.realtime:
        return None
    rt = resolved.realtime_vcpus
    housekeeping = CpuSet.range(0, guest.vcpus - 1) - rt
    xpath = "/domain/cputune/vcpusched"
    notes.append(
        Note(
            topic="rt",
            message=f"SCHED_FIFO priority {RT_PRIORITY} on vCPUs {rt}"
            + (
                f"; vCPU {housekeeping} stays SCHED_OTHER for the guest's housekeeping"
                if housekeeping
                else ""
            ),
            xpath=xpath,
        )
    )
    if not housekeeping:
        notes.append(
            Note(
                topic="rt",
                level=Level.WARNING,
                message="--force: every vCPU is realtime; guest timers, RCU and kworkers compete with FIFO "
                "spinners and the guest can stall (VT405)",
                xpath=xpath,
            )
        )
    pins = {p.vcpu: p.cpus for p in vcpupins}
    rt_host = CpuSet().union(*(pins[v] for v in rt if v in pins)) if pins else vcpu_cpus
    notes.extend(_rt_pin_warnings(vcpu_cpus, emulator_cpus, rt_host))
    _rt_runtime_gate(guest, caps, notes, force=resolved.force)
    return (VcpuSched(vcpus=rt, scheduler="fifo", priority=RT_PRIORITY),)


def _rt_pin_warnings(vcpu_cpus: CpuSet, emulator_cpus: CpuSet | None, rt_host: CpuSet) -> list[Note]:
    """Realtime vCPUs left unpinned, or an emulator thread the FIFO vCPUs can starve."""
    notes: list[Note] = []
    if not vcpu_cpus:
        notes.append(
            Note(
                topic="rt",
                level=Level.WARNING,
                message="realtime vCPUs are not pinned: FIFO threads floating over shared CPUs starve "
                "whatever else runs there (VT401)",
                xpath="/domain/cputune/vcpupin",
            )
        )
    if emulator_cpus is None:
        notes.append(
            Note(
                topic="rt",
                level=Level.WARNING,
                message="emulator thread not pinned: it may run on the realtime cores and be starved by "
                "the FIFO vCPUs (VT407)",
                xpath="/domain/cputune/emulatorpin",
            )
        )
    elif rt_host and not emulator_cpus.isdisjoint(rt_host):
        notes.append(
            Note(
                topic="rt",
                level=Level.WARNING,
                message=f"emulator thread shares CPUs {emulator_cpus & rt_host} with realtime vCPUs: the "
                "FIFO vCPU starves it and I/O completions stall (VT407)",
                xpath="/domain/cputune/emulatorpin",
            )
        )
    return notes


def _rt_runtime_gate(guest: GuestSpec, caps: HostCaps | None, notes: list[Note], *, force: bool) -> None:
    """cgroup v1 with CONFIG_RT_GROUP_SCHED gives a new cgroup no RT budget: sched_setscheduler(FIFO)
    then fails with EPERM and libvirt aborts the start ("Cannot set scheduler parameters for pid").
    Infeasible like missing hugepages: the guest would not start; ``--force`` writes it anyway."""
    if caps is None or caps.cgroup_version is None:
        notes.append(Note(topic="rt", message="host cgroup setup unknown: RT runtime of the machine slice "
                          "not checked (run on the host itself to check)"))  # fmt: skip
        return
    if caps.cgroup_version != 1 or caps.rt_runtime_us is None or caps.rt_runtime_us > 0:
        return
    path = caps.rt_runtime_path or DEFAULT_RT_RUNTIME_PATH
    need = (
        f"realtime needs RT runtime for the guest's FIFO vCPUs, and cgroup v1 gives the machine slice none "
        f"({path} = 0)"
    )
    fix = (
        f"echo 950000 > {path} (the parent's cpu.rt_runtime_us must be at least as large), or boot with "
        "systemd.unified_cgroup_hierarchy=1 to use cgroup v2"
    )
    if not force:
        raise InfeasibleError(
            f'{guest.name}: {need}: the start would fail with "Cannot set scheduler parameters". Fix: '
            f"{fix}; or pass --force to plan anyway (VT406)"
        )
    notes.append(
        Note(
            topic="rt",
            level=Level.WARNING,
            message=f'--force: {need}: the guest\'s start fails with "Cannot set scheduler parameters" '
            f"until it has some. Fix: {fix} (VT406)",
            xpath="/domain/cputune/vcpusched",
        )
    )
