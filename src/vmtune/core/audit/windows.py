"""Windows guest rules VT301-VT304: Hyper-V enlightenments, timers, APICv/AVIC, host support.

Why (DESIGN.md): Windows hammers the ACPI PM timer (IO port 0x608) and APIC MMIO; each access is a VM exit.
Hyper-V enlightenments, the hypervclock timer, hpet off, rtc catchup, pit delay and host APICv/AVIC remove
them. But a host can't always provide what the XML asks: nested KVM rejects Hyper-V MSRs it doesn't
implement, and domcapabilities lists only the enlightenments it supports.
"""

from __future__ import annotations

from collections.abc import Iterator

from vmtune.core.audit.common import apply_cmd
from vmtune.core.audit.engine import (
    AuditContext,
    Hit,
    guest_rule,
    is_realtime,
    is_windows,
)
from vmtune.core.guest import GuestSpec
from vmtune.core.intent.model import Profile, Settings
from vmtune.core.plan import Level
from vmtune.core.tuning.hyperv import EVERYWHERE, RECOMMENDED, hypervclock_available

__all__ = ["RECOMMENDED_HYPERV", "vt301", "vt302", "vt303", "vt304"]

# The windows profile's own set (core.tuning.hyperv): the situational ones (reset, vendor_id, evmcs,
# reenlightenment) are left out, so their absence is not a finding.
RECOMMENDED_HYPERV = RECOMMENDED


# Hyper-V enlightenments and the PC timers (hpet, pit, rtc ticks) exist only for x86 guests; Windows on arm64
# (virt-install's aarch64 win11) has neither, so those rules don't apply there.
_X86 = frozenset({"x86_64", "i686", "i586", "i386"})


def _x86_windows(g: GuestSpec) -> bool:
    return is_windows(g) and (g.arch is None or g.arch in _X86)


WINDOWS: Settings = (("profiles", "windows"),)


def _windows_fix(g: GuestSpec) -> str:
    return apply_cmd(g, settings=WINDOWS)


@guest_rule("VT301", "Windows guest missing Hyper-V enlightenments", Level.WARNING)
def vt301(g: GuestSpec, ctx: AuditContext) -> Iterator[Hit]:
    if not _x86_windows(g) or g.hyperv_mode == "passthrough":
        return
    enabled = {f.name for f in g.hyperv if f.state}
    offered = EVERYWHERE if ctx.caps.hyperv is None else ctx.caps.hyperv  # unknown host: what plan writes
    wanted = [n for n in RECOMMENDED_HYPERV if n in offered]
    missing = [n for n in wanted if n not in enabled]
    if missing:
        yield Hit(
            guest=g,
            location="/domain/features/hyperv" if g.hyperv_mode is not None else "/domain/features",
            message=f"Windows guest without Hyper-V enlightenments {', '.join(missing)}: "
            "timer and APIC accesses become VM exits",
            fix=_windows_fix(g),
            settings=WINDOWS,
        )


@guest_rule(
    "VT302", "Windows guest timers (no hypervclock, hpet on, rtc not catchup, pit not delay)", Level.WARNING
)
def vt302(g: GuestSpec, ctx: AuditContext) -> Iterator[Hit]:
    if not _x86_windows(g):
        return
    problems = []
    hv = g.timer("hypervclock")
    # the planner's gate: asked for only where this host is known to give hv-time
    if hypervclock_available(ctx.caps) and (hv is None or hv.present is False):
        problems.append("no hypervclock")
    hpet = g.timer("hpet")
    # QEMU enables the HPET unless told not to; Windows then prefers it and every read exits
    if hpet is None or hpet.present is not False:
        problems.append("hpet not off")
    rtc = g.timer("rtc")
    if rtc is None or rtc.tickpolicy != "catchup":
        problems.append("rtc not catchup")
    pit = g.timer("pit")
    if pit is None or pit.tickpolicy != "delay":
        problems.append("pit not delay")
    if problems:
        yield Hit(
            guest=g,
            location="/domain/clock",
            message=f"Windows guest timers: {', '.join(problems)}",
            fix=f"<timer name='hypervclock' present='yes'/>, hpet present='no', rtc tickpolicy='catchup', "
            f"pit tickpolicy='delay': {_windows_fix(g)}",
            settings=WINDOWS,
        )


@guest_rule("VT303", "host APICv/AVIC off", Level.WARNING)
def vt303(g: GuestSpec, ctx: AuditContext) -> Iterator[Hit]:
    if ctx.caps.apicv is not False:
        return  # on, or unknown (no host probe): say nothing rather than guess
    latency = g.intent is not None and (g.intent.has(Profile.LATENCY) or g.intent.has(Profile.REALTIME))
    if not (is_windows(g) or latency or is_realtime(g)):
        return
    amd = "amd" in (ctx.caps.cpu_vendor or ctx.host.vendor or "").lower()
    module, param = ("kvm_amd", "avic=1") if amd else ("kvm_intel", "enable_apicv=1")
    yield Hit(
        guest=g,
        location=f"host: /sys/module/{module}/parameters",
        message="host KVM runs with APICv/AVIC off: every APIC access of this guest is a VM exit",
        fix=f"enable it: options {module} {param} in /etc/modprobe.d/kvm.conf, reload {module}, "
        "restart the guest",
    )


@guest_rule("VT304", "enlightenment the host KVM can't provide", Level.ERROR)
def vt304(g: GuestSpec, ctx: AuditContext) -> Iterator[Hit]:
    supported = ctx.caps.hyperv
    if supported is None or g.hyperv_mode is None:
        return
    if g.hyperv_mode == "passthrough":
        return  # QEMU passes through what the host has; nothing named to reject
    bad = [f.name for f in g.hyperv if f.state and f.name not in supported]
    if bad:
        yield Hit(
            guest=g,
            location=f"/domain/features/hyperv/{bad[0]}",
            message=f"host KVM doesn't offer Hyper-V {', '.join(bad)} (not in domcapabilities): the start "
            "may fail (nested KVM here rejects vpindex, synic, stimer, vapic at start)",
            fix="drop them, or let vmtune gate them: "
            f"{apply_cmd(g, '--domcapabilities FILE', settings=WINDOWS)}",
            settings=WINDOWS,
        )
