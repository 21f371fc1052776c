"""Host checklist: settings vmtune does not apply itself, printed with the exact command or line.

A guest's tuning is only half the job: the dedicated cores must also be kept free of host noise (timer
ticks, RCU callbacks, IRQs, other tasks), hugepages must be reserved, and APICv/AVIC must be on. These
change the host for every guest, so vmtune only prints them (``plan --explain`` and ``--json``).
"""

from __future__ import annotations

from collections.abc import Sequence

from vmtune.core.intent.model import Resolved
from vmtune.core.topology.caps import HostCaps
from vmtune.core.topology.model import Host
from vmtune.core.tuning.hugepages import HugepageNeed, sysfs_nr_path
from vmtune.cpuset import CpuSet
from vmtune.units import PAGE_1G, page_label

__all__ = ["dedicated_cores", "host_advice"]


def dedicated_cores(host: Host, cpus: CpuSet) -> CpuSet:
    """``cpus`` widened to whole physical cores: an idle SMT sibling must be quiet too, or its interrupts
    and ticks steal the core's execution units from the vCPU on the other thread."""
    return CpuSet().union(cpus, *(host.siblings(cpu) for cpu in cpus))


def host_advice(
    *,
    host: Host,
    resolved: Resolved,
    caps: HostCaps | None,
    vcpu_cpus: CpuSet,
    vendor: str | None,
    shortfall: Sequence[HugepageNeed] = (),
) -> tuple[str, ...]:
    out: list[str] = []
    cores = dedicated_cores(host, vcpu_cpus)
    if (resolved.latency or resolved.realtime) and cores:
        out.extend(_isolation(host, cores, realtime=resolved.realtime))
    out.extend(_hugepages(need) for need in shortfall)
    if caps is not None and caps.apicv is False and (resolved.windows or resolved.latency):
        out.append(_apicv(vendor))
    if resolved.realtime:
        out.append(
            "realtime guest: remove the USB tablet (<input type='tablet' bus='usb'/>) and other polled "
            "USB devices: the emulated USB controller's polling timer interrupts the realtime vCPUs"
        )
    return tuple(out)


def _isolation(host: Host, cores: CpuSet, *, realtime: bool) -> list[str]:
    """Keep the host's scheduler, ticks, RCU callbacks and IRQs off the dedicated cores."""
    out: list[str] = []
    if cores - host.isolated or cores - host.nohz_full:
        # The parameters replace the current lists, so keep what is already isolated for other guests.
        iso, nohz = cores | host.isolated, cores | host.nohz_full
        cmdline = f"isolcpus=managed_irq,domain,{iso} nohz_full={nohz} rcu_nocbs={nohz}"
        out.append(
            f"kernel command line: {cmdline} "
            "(keeps the scheduler, the timer tick and RCU callbacks off the dedicated cores; reboot "
            f"to apply; now isolated: {host.isolated or 'none'}, nohz_full: {host.nohz_full or 'none'})"
        )
    out.append(
        f"irqbalance: IRQBALANCE_BANNED_CPULIST={cores} in /etc/default/irqbalance (irqbalance >= 1.8; "
        f"older: IRQBALANCE_BANNED_CPUS={cores.to_mask(max(32, host.online.last() + 1))}), then restart "
        "irqbalance, so device interrupts stay on the housekeeping CPUs"
    )
    profile = "realtime-virtual-host" if realtime else "cpu-partitioning"
    out.append(
        f"tuned: echo 'isolated_cores={cores}' > /etc/tuned/{profile}-variables.conf && "
        f"tuned-adm profile {profile}"
    )
    return out


def _hugepages(need: HugepageNeed) -> str:
    cmd = f"echo {need.total + need.short} > {sysfs_nr_path(need.node, need.size_kib)}"
    line = (
        f"hugepages: node {need.node} needs {need.need} x {page_label(need.size_kib)} "
        f"({need.free} free of {need.total}): {cmd}"
    )
    if need.size_kib == PAGE_1G:
        line += (
            " (1G pages are best reserved at boot, before memory fragments: add "
            "hugepagesz=1G hugepages=N to the kernel command line, N = pages over all nodes)"
        )
    return line


def _apicv(vendor: str | None) -> str:
    if vendor == "AMD":
        knob = "AVIC: echo 'options kvm_amd avic=1' > /etc/modprobe.d/kvm-avic.conf"
        reload = "kvm_amd"
    elif vendor == "Intel":
        knob = "APICv: echo 'options kvm_intel enable_apicv=1' > /etc/modprobe.d/kvm-apicv.conf"
        reload = "kvm_intel"
    else:
        knob = "APICv/AVIC: options kvm_intel enable_apicv=1 (Intel) or options kvm_amd avic=1 (AMD)"
        reload = "kvm_intel/kvm_amd"
    return (
        f"{knob}, then reload {reload} with no guest running (or reboot): without it every guest "
        "APIC access and interrupt is a VM exit (VT303)"
    )
