"""Windows guests: the Hyper-V enlightenment set and clock timers, gated by what the host KVM offers.

Each enlightenment removes a class of VM exits a Windows guest would otherwise take (APIC MMIO, the ACPI
PM timer at port 0x608, IPIs and TLB flushes by broadcast). QEMU refuses some of them without their
base (``target/i386/kvm/kvm.c`` kvm_hyperv_properties[].dependencies): stimer needs synic and the
Hyper-V clock (hv-time, libvirt's ``<timer name='hypervclock'>``); synic, tlbflush and ipi need vpindex;
evmcs needs vapic. So a feature the host lacks also takes its dependents with it, each with a Note.

What the host offers comes from domcapabilities. Without them (offline plans, or a connection not allowed
to read them) only ``EVERYWHERE`` is added: a guest that does not start is worse than a slower one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from vmtune.core.guest import GuestSpec, HypervFeature, Timer
from vmtune.core.plan import Level, Note
from vmtune.core.topology.caps import HostCaps

__all__ = [
    "DEPENDS",
    "EVERYWHERE",
    "HYPERVCLOCK",
    "KVM_BACKED",
    "ORDER",
    "RECOMMENDED",
    "SITUATIONAL",
    "SPINLOCK_RETRIES",
    "WindowsTuning",
    "hyperv_tuning",
    "hypervclock_available",
    "plan_enlightenments",
]

SPINLOCK_RETRIES = "8191"
"""Microsoft's recommended value (0x1fff): spin that many times before notifying the hypervisor."""

HYPERVCLOCK = "hypervclock"

ORDER = (
    "relaxed", "vapic", "spinlocks", "vpindex", "runtime", "synic", "stimer", "reset", "vendor_id",
    "frequencies", "reenlightenment", "tlbflush", "ipi", "evmcs", "avic", "emsr_bitmap", "xmm_input",
)  # fmt: skip
"""libvirt's virDomainHyperv enum order: how libvirt formats ``<hyperv>`` children (and domcaps lists)."""

DEPENDS: dict[str, tuple[str, ...]] = {
    "synic": ("vpindex",),
    "stimer": ("vpindex", "synic", HYPERVCLOCK),
    "tlbflush": ("vpindex",),
    "ipi": ("vpindex",),
    "evmcs": ("vapic",),
}

KVM_BACKED = frozenset(ORDER) - {"spinlocks", "vendor_id"}
"""Enlightenments that need KVM's Hyper-V emulation (KVM_GET_SUPPORTED_HV_CPUID). spinlocks and
vendor_id are plain CPUID values QEMU fills in itself, which is why a nested KVM without Hyper-V
support still lists exactly those two."""

EVERYWHERE = frozenset({"relaxed", "spinlocks", "vendor_id"})
"""Enlightenments every KVM host gives a guest, written when what the host offers is unknown. spinlocks and
vendor_id are CPUID values QEMU fills in itself; relaxed is a CPUID hint with no MSR behind it, which KVM
always reports and QEMU assumes even of kernels without KVM_GET_SUPPORTED_HV_CPUID (a nested KVM here
that rejects vapic and vpindex at start takes all three). Everything else needs KVM's Hyper-V MSRs."""

# The profile's set, in libvirt order; evmcs is added on Intel only (enlightened VMCS is a VMX thing).
_PROFILE: tuple[HypervFeature, ...] = (
    HypervFeature(name="relaxed"),
    HypervFeature(name="vapic"),
    HypervFeature(name="spinlocks", attrs=(("retries", SPINLOCK_RETRIES),)),
    HypervFeature(name="vpindex"),
    HypervFeature(name="runtime"),
    HypervFeature(name="synic"),
    HypervFeature(name="stimer", children=("direct",)),
    HypervFeature(name="reset"),
    HypervFeature(name="frequencies"),
    HypervFeature(name="reenlightenment"),
    HypervFeature(name="tlbflush"),
    HypervFeature(name="ipi"),
)
_EVMCS = HypervFeature(name="evmcs")

SITUATIONAL = frozenset({"reset", "vendor_id", "evmcs", "reenlightenment"})
"""Enlightenments that help only in some setups (guest reset, GPU drivers, nested Hyper-V, migration):
written when they apply, never missed when absent."""
RECOMMENDED = tuple(f.name for f in _PROFILE if f.name not in SITUATIONAL)
"""The windows profile's enlightenments every KVM since 5.x provides, in libvirt order: a Windows guest
without one of them takes VM exits it need not (what the audit checks)."""

_XP = "/domain/features/hyperv/"


@dataclass(frozen=True, slots=True, kw_only=True)
class WindowsTuning:
    hyperv: tuple[HypervFeature, ...] | None
    """None: leave ``<hyperv>`` alone; (): remove it; else exactly these children."""
    timers: tuple[Timer, ...] | None
    notes: tuple[Note, ...]


def hypervclock_available(caps: HostCaps | None) -> bool | None:
    """Whether the host can give the guest hv-time (domcapabilities does not list it by name); None when
    unknown (no domcapabilities).

    hv-time comes from the same KVM Hyper-V CPUID leaf as runtime/frequencies; when domcapabilities lists
    no KVM-backed enlightenment at all (nested KVM: only spinlocks, vendor_id), QEMU rejects hv-time too.
    """
    if caps is None or caps.hyperv is None:
        return None
    return not caps.hyperv.isdisjoint(KVM_BACKED)


def _order(feat: HypervFeature) -> int:
    return ORDER.index(feat.name) if feat.name in ORDER else len(ORDER)


def hyperv_tuning(
    *,
    guest: GuestSpec,
    caps: HostCaps | None,
    vendor: str | None,
    enlighten: bool,
    remove: bool,
    timers: bool,
) -> WindowsTuning:
    """Decide ``<hyperv>`` children and clock timers.

    ``enlighten``: write the profile's enlightenments (``--hyperv on``/auto on Windows); ``remove``:
    ``--hyperv off`` (drop ``<hyperv>`` and hypervclock); ``timers``: the Windows timer set.
    """
    notes: list[Note] = []
    offered = caps.hyperv if caps is not None else None
    known = hypervclock_available(caps)
    current = guest.timer(HYPERVCLOCK)
    # unknown host: keep a hypervclock the guest already has (it ran with it), add none
    clock_ok = known if known is not None else current is not None and current.present is not False
    hyperv: tuple[HypervFeature, ...] | None = None

    if remove:
        if guest.hyperv_mode is not None:
            hyperv = ()
            notes.append(Note(topic="hyperv", message="--hyperv off: removing <hyperv>", xpath=_XP[:-1]))
    elif enlighten:
        hyperv = plan_enlightenments(guest, offered=offered, vendor=vendor, clock_ok=clock_ok, notes=notes)

    out_timers = _timers(guest, enlighten=enlighten and not remove, windows=timers, clock_ok=clock_ok,
                         clock_known=known is not None, caps=caps, notes=notes)  # fmt: skip
    return WindowsTuning(hyperv=hyperv, timers=out_timers, notes=tuple(notes))


def plan_enlightenments(
    guest: GuestSpec,
    *,
    offered: frozenset[str] | None,
    vendor: str | None,
    clock_ok: bool,
    notes: list[Note],
) -> tuple[HypervFeature, ...]:
    """The profile's enlightenments (+ the guest's own extras) that ``offered`` allows and whose bases
    survive; ``notes`` gets one Note per dropped feature. ``offered`` None: unknown, so only ``EVERYWHERE``
    and what the guest already has on, with one Note naming what was left out."""
    wanted = _wanted(guest, vendor, notes)
    if offered is None:
        wanted = _unknown_host(guest, wanted, clock_ok, notes)
    kept: list[HypervFeature] = []
    have: set[str] = {HYPERVCLOCK} if clock_ok else set()
    for feat in wanted:
        dropped = _why_dropped(feat, offered, have)
        if dropped is not None:
            notes.append(dropped)
            continue
        have.add(feat.name)
        kept.append(feat)
    if kept:
        notes.append(
            Note(
                topic="hyperv",
                message=f"Hyper-V enlightenments: {', '.join(_describe(f) for f in kept)} "
                "(remove the VM exits Windows takes on APIC, timers, IPIs and TLB flushes)",
                xpath=_XP[:-1],
            )
        )
    return tuple(kept)


def _unknown_host(
    guest: GuestSpec, wanted: list[HypervFeature], clock_ok: bool, notes: list[Note]
) -> list[HypervFeature]:
    """What may be written when the host's offer is unknown: ``EVERYWHERE`` plus the guest's own."""
    own = {f.name for f in guest.hyperv if f.state}
    keep = [f for f in wanted if f.name in EVERYWHERE or f.name in own]
    left = [f.name for f in wanted if f not in keep] + ([] if clock_ok else [HYPERVCLOCK])
    if left:
        notes.append(
            Note(
                topic="hyperv",
                level=Level.WARNING,
                message=f"host KVM's Hyper-V support unknown (no domcapabilities): left out {_list(left)}, "
                f"which not every KVM host provides, and wrote only what every one does "
                f"({_list(f.name for f in keep) if keep else 'nothing'}). For the full set pass "
                "--domcapabilities FILE (`virsh domcapabilities` on that host, as root) or plan with "
                "--connect URI as a user libvirt lets read them (root)",
                xpath=_XP[:-1],
            )
        )
    return keep


def _wanted(guest: GuestSpec, vendor: str | None, notes: list[Note]) -> list[HypervFeature]:
    """The profile's set (evmcs on Intel only) plus the guest's own extras, in libvirt order."""
    wanted: list[HypervFeature] = list(_PROFILE)
    if vendor == "Intel":
        wanted.append(_EVMCS)
    else:
        # Enlightened VMCS speeds up Hyper-V/VBS nested inside the guest; KVM implements it for VMX only.
        why = "host CPU vendor unknown" if vendor is None else f"{vendor} host"
        notes.append(Note(topic="hyperv", message=f"evmcs left out: Intel only ({why})"))
    names = {f.name for f in wanted}
    # What the guest already has and the profile doesn't set (vendor_id for GPU drivers, avic, ...) is
    # the operator's choice: keep it, gated like the rest. vendor_id is written only when asked for.
    wanted.extend(f for f in guest.hyperv if f.name not in names and f.state)
    wanted.sort(key=_order)
    return wanted


def _why_dropped(feat: HypervFeature, offered: frozenset[str] | None, have: set[str]) -> Note | None:
    """The warning for a feature the host KVM does not offer or whose base was dropped; None to keep it."""
    if offered is not None and feat.name not in offered:
        return Note(
            topic="hyperv",
            level=Level.WARNING,
            message=f"dropped {feat.name}: the host KVM does not offer it "
            f"(domcapabilities lists {_list(offered)}) (VT304)",
            xpath=_XP + feat.name,
        )
    missing = [dep for dep in DEPENDS.get(feat.name, ()) if dep not in have]
    if missing:
        return Note(
            topic="hyperv",
            level=Level.WARNING,
            message=f"dropped {feat.name}: it needs {_list(missing)}, which the host can't provide "
            "(QEMU refuses it without its base)",
            xpath=_XP + feat.name,
        )
    return None


def _timers(
    guest: GuestSpec,
    *,
    enlighten: bool,
    windows: bool,
    clock_ok: bool,
    clock_known: bool,
    caps: HostCaps | None,
    notes: list[Note],
) -> tuple[Timer, ...] | None:
    out: list[Timer] = []
    current = guest.timer(HYPERVCLOCK)
    clock_on = enlighten and clock_ok
    if clock_on:
        out.append(Timer(name=HYPERVCLOCK, present=True))
    elif current is not None and current.present is not False:
        # A nested KVM without Hyper-V support rejects the hv-time MSRs at start: switch it off.
        out.append(Timer(name=HYPERVCLOCK, present=False))
        why = "--hyperv off" if not enlighten else "the host KVM can't provide it"
        notes.append(Note(topic="clock", level=Level.WARNING, message=f"hypervclock off: {why}"))
    elif enlighten and clock_known:
        src = caps.source if caps is not None and caps.source else "domcapabilities"
        notes.append(
            Note(
                topic="clock",
                level=Level.WARNING,
                message=f"hypervclock left out: {src} lists no KVM-backed Hyper-V feature, so hv-time "
                "is unavailable (nested KVM); Windows falls back to slower clock sources",
                xpath="/domain/clock/timer[@name='hypervclock']",
            )
        )
    if windows:
        out.extend(
            (
                Timer(name="rtc", tickpolicy="catchup"),
                Timer(name="pit", tickpolicy="delay"),
                Timer(name="hpet", present=False),
            )
        )
        notes.append(
            Note(
                topic="clock",
                message="Windows timers: rtc catchup and pit delay (no time drift after a "
                "descheduled vCPU), hpet off (its MMIO reads exit to QEMU)"
                + (", hypervclock on (reference TSC page: time reads without exits)" if clock_on else ""),
                xpath="/domain/clock",
            )
        )
    return tuple(out) if out else None


def _describe(feat: HypervFeature) -> str:
    extra = [f"{k}={v}" for k, v in feat.attrs] + list(feat.children)
    return f"{feat.name}({', '.join(extra)})" if extra else feat.name


def _list(names: Iterable[str]) -> str:
    items = sorted(names, key=lambda n: ORDER.index(n) if n in ORDER else len(ORDER))
    return ", ".join(items) if items else "nothing"
