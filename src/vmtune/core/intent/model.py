"""Tuning intent: what the operator asked for (profiles + knobs), stored in the domain's metadata.

Each ``Intent`` field is a knob declared once (``knob(...)``: parser, help, flag, attribute, profile
defaults); ``KNOBS`` is that table, read by the CLI, the metadata reader/writer and ``profiles.resolve``.
A field left at None means "whatever the profiles say". The Intent is saved verbatim so a later hook run
re-plans with the same wishes, not with the old result.
"""

# knob(...) returns a dataclasses.field, as field() itself does, so the call is the declaration:
# ruff: noqa: RUF009

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from vmtune.core.intent.knob import KNOB, Knob, format_switch, knob, parse_cpuset, parse_switch
from vmtune.core.intent.values import (
    CacheFit,
    CacheShare,
    CoreKind,
    CpuPolicy,
    EmulatorPolicy,
    Fit,
    HypervMode,
    MemoryMode,
    Numa,
    OsFamily,
    PageSize,
    PowerIdle,
    Profile,
    ThreadPolicy,
    VcpuMask,
    format_profiles,
    parse_iothreads,
    parse_profiles,
)
from vmtune.cpuset import CpuSet
from vmtune.units import GIB, MIB, parse_size_kib

__all__ = [
    "KNOBS",
    "CacheFit",
    "CacheShare",
    "CoreKind",
    "CpuPolicy",
    "EmulatorPolicy",
    "Fit",
    "HypervMode",
    "Intent",
    "MemoryMode",
    "Numa",
    "OsFamily",
    "PageSize",
    "PowerIdle",
    "Profile",
    "Resolved",
    "Settings",
    "ThreadPolicy",
    "VcpuMask",
    "intent_args",
    "intent_texts",
    "parse_intent",
    "with_settings",
]

LATENCY, REALTIME = Profile.LATENCY, Profile.REALTIME


def _size_text(kib: int) -> str:
    """A size as ``parse_size_kib`` reads it back: ``2G``, ``512M``, else KiB."""
    for unit, scale in (("G", GIB), ("M", MIB)):
        if kib % scale == 0:
            return f"{kib // scale}{unit}"
    return str(kib)


@dataclass(frozen=True, slots=True, kw_only=True)
class Intent:
    """The knobs, in the order ``--help`` lists their flags and the metadata writes their attributes."""

    profiles: tuple[Profile, ...] = knob(
        parse_profiles, default=(Profile.BALANCED,), attr="profile", format=format_profiles, metavar="LIST",
        help="balanced|latency|realtime|windows, comma-combinable.",
    )  # fmt: skip
    cpu_policy: CpuPolicy | None = knob(
        CpuPolicy, otherwise=CpuPolicy.DEDICATED,
        help="dedicated: a host CPU per vCPU; shared: vCPUs time-share a pool; mixed: both.",
    )  # fmt: skip
    dedicated_mask: VcpuMask | None = knob(
        VcpuMask.parse, metavar="SPEC",
        help="vCPUs on dedicated cores under --cpu-policy mixed, cpuset syntax (0-1, ^0).",
    )  # fmt: skip
    thread_policy: ThreadPolicy | None = knob(
        ThreadPolicy, profiles={LATENCY: ThreadPolicy.ISOLATE}, otherwise=ThreadPolicy.PREFER,
        help="SMT siblings: prefer, isolate or require.",
    )  # fmt: skip
    emulator: EmulatorPolicy | None = knob(
        EmulatorPolicy, profiles={LATENCY: EmulatorPolicy.ISOLATE}, otherwise=EmulatorPolicy.SHARE,
        help="Emulator thread: share or isolate.",
    )  # fmt: skip
    iothreads: int | None = knob(parse_iothreads, metavar="N", help="Number of IOThreads.")
    """None: as many as the guest has."""
    numa: Numa = knob(
        Numa.parse, default=Numa(), metavar="<auto|off|N>", help="auto, off, or a number of host nodes."
    )
    numa_fit: Fit | None = knob(
        Fit, otherwise=Fit.PACK,
        help="pack: the fullest node that holds the guest; spread: the emptiest.",
    )  # fmt: skip
    cache_fit: CacheFit | None = knob(
        CacheFit, profiles={LATENCY: CacheFit.OWN}, otherwise=CacheFit.PACK,
        help="pack: the fullest cache group that holds the guest (shared with other guests); own: never a "
        "group another guest uses while an idle one holds it; spread: a core per cache group in turn.",
    )  # fmt: skip
    memory_mode: MemoryMode | None = knob(
        MemoryMode, otherwise=MemoryMode.STRICT, help="numatune mode for the guest memory."
    )
    hugepages: PageSize | None = knob(PageSize.parse, metavar="<2M|1G|none>", help="2M, 1G or none.")
    """None: the profiles decide (``profiles.resolve``: latency takes what is free, realtime insists)."""
    realtime_mask: VcpuMask | None = knob(
        VcpuMask.parse, profiles={REALTIME: VcpuMask(vcpus=CpuSet([0]), all_but=True)}, metavar="SPEC",
        help="vCPUs that get SCHED_FIFO, cpuset syntax (^0).",
    )  # fmt: skip
    hyperv: HypervMode = knob(
        HypervMode, default=HypervMode.AUTO, help="Hyper-V enlightenments: auto/on/off."
    )
    reserve: CpuSet | None = knob(parse_cpuset, metavar="CPUSET", help="Host CPUs never given to guests.")
    memory_reserve: int | None = knob(
        parse_size_kib, format=_size_text, metavar="SIZE",
        help="Memory per NUMA node kept from guests (default: 1/20 of the node, at least 1G).",
    )  # fmt: skip
    """KiB per node; None: ``core.ledger.memory.default_reserve_kib``."""
    os: OsFamily | None = knob(OsFamily, help="Guest OS when libosinfo metadata is missing.")
    core_kind: CoreKind | None = knob(
        CoreKind, profiles={LATENCY: CoreKind.BIG}, otherwise=CoreKind.ANY,
        help="Hybrid CPUs: big, little or any.",
    )  # fmt: skip
    cache_share: CacheShare | None = knob(
        CacheShare.parse, metavar="<N%|WAYS|none>",
        help="Exclusive L3 cache for the vCPUs (resctrl): a share, a number of ways, or none.",
    )  # fmt: skip
    """None: leave ``<cachetune>`` alone; applied only where ``/sys/fs/resctrl`` is mounted."""
    force: bool = knob(
        parse_switch,
        default=False,
        switch=True,
        format=format_switch,
        help="Ignore host gates (domcapabilities, cgroup RT).",
    )
    reshape: bool = knob(
        parse_switch,
        default=False,
        switch=True,
        format=format_switch,
        help="Give a guest that has NUMA cells or a topology a new shape (changes what the guest sees).",
    )
    """One-shot: the planner stores the intent without it, so a later re-plan keeps the new shape."""
    isolate_host: bool | None = knob(
        parse_switch, switch=True, format=format_switch, profiles={REALTIME: True}, otherwise=False,
        help="While the guest runs, keep host tasks, IRQs and workqueues off its CPUs (hook).",
    )  # fmt: skip
    """None: the profiles decide (realtime isolates); the hook applies it at ``prepare begin``."""
    power_idle: PowerIdle | None = knob(
        PowerIdle.parse, metavar="<governor:NAME|offline>",
        help="Dedicated cores: performance governor while the guest runs, this once it stops (hook).",
    )  # fmt: skip

    def has(self, profile: Profile) -> bool:
        return profile in self.profiles


KNOBS: tuple[Knob[Any], ...] = tuple(f.metadata[KNOB].named(f.name) for f in fields(Intent))
"""Every knob, in Intent's field order."""


def parse_intent(raw: Mapping[str, str], *, where: Callable[[Knob[Any]], str]) -> Intent:
    """The Intent ``raw`` (knob name -> text) asks for; knobs not in ``raw`` keep their defaults.

    InputError says ``WHERE 'TEXT': reason``, ``where`` naming the knob's source (its flag, or the file
    and XPath of its attribute).
    """
    return Intent(**{k.name: k.read(raw[k.name], where(k)) for k in KNOBS if k.name in raw})


Settings = tuple[tuple[str, str], ...]
"""(knob name, text) pairs, as flags or metadata attributes spell them: what a finding's fix plans with."""


def with_settings(intent: Intent | None, settings: Settings) -> Intent:
    """``intent`` (the defaults when None) with ``settings`` on top, as ``vmtune apply`` with those flags and
    the intent's own would plan; profiles add to the ones the intent has (``balanced`` gives way)."""
    if not settings:
        return intent or Intent()
    raw = {k.name: text for k, text in intent_texts(intent or Intent())}
    for name, text in settings:
        if name == "profiles":
            have = [p for p in raw.get(name, "").split(",") if p and p != Profile.BALANCED]
            raw[name] = ",".join(dict.fromkeys([*have, *text.split(",")]))
        else:
            raw[name] = text
    return parse_intent(raw, where=lambda k: k.flag)


def intent_args(intent: Intent) -> Iterator[str]:
    """The command-line flags that ask for ``intent`` (knobs at their default left out), in table order."""
    default = Intent()
    for k in KNOBS:
        value = getattr(intent, k.name)
        if value == getattr(default, k.name):
            continue
        if k.switch:
            yield k.flag if value else k.no_flag
        elif (text := k.text(value)) is not None:
            yield from (k.flag, text)


def intent_texts(intent: Intent) -> Iterator[tuple[Knob[Any], str]]:
    """The knobs ``intent`` sets and their text, in table order (``parse_intent`` reads them back)."""
    for k in KNOBS:
        text = k.text(getattr(intent, k.name))
        if text is not None:
            yield k, text


@dataclass(frozen=True, slots=True, kw_only=True)
class Resolved:
    """An Intent with the profiles' defaults filled in (``vmtune.core.intent.profiles.resolve``)."""

    cpu_policy: CpuPolicy = CpuPolicy.DEDICATED
    thread_policy: ThreadPolicy = ThreadPolicy.PREFER
    emulator: EmulatorPolicy = EmulatorPolicy.SHARE
    iothreads: int = 0
    iothread_ids: tuple[int, ...] = ()
    """The ids libvirt gives those ``iothreads`` (``core.guest.iothread_ids``)."""
    numa: Numa = field(default_factory=Numa)
    numa_fit: Fit = Fit.PACK
    cache_fit: CacheFit = CacheFit.PACK
    memory_mode: MemoryMode = MemoryMode.STRICT
    hugepages_kib: int | None = None
    """Hugepage size to back memory with (2048, 1048576), None for normal pages."""
    hugepages_if_free: bool = False
    """True when the profile wants hugepages only if the host has enough free (latency)."""
    realtime_vcpus: CpuSet = field(default_factory=CpuSet)
    """vCPU ids that get SCHED_FIFO (empty: no realtime)."""
    dedicated_vcpus: CpuSet | None = None
    """``--cpu-policy mixed``: the vCPU ids on dedicated cores (the rest float over the shared pool);
    None for the other policies."""
    windows: bool = False
    hyperv: bool = False
    core_kind: CoreKind = CoreKind.ANY
    host_passthrough: bool = False
    reserve: CpuSet | None = None
    latency: bool = False
    realtime: bool = False
    hugepages_required: bool = False
    """Hugepages are a must (realtime, or an explicit ``--hugepages`` size): not enough free is infeasible."""
    hugepages_off: bool = False
    """``--hugepages none``: back memory with normal pages, removing ``<hugepages>``."""
    hyperv_off: bool = False
    """``--hyperv off``: remove ``<hyperv>`` and the hypervclock timer."""
    force: bool = False
    isolate_host: bool = False
    """The hook confines host tasks, IRQs and workqueues to the CPUs no isolating guest holds."""
    power_idle: PowerIdle | None = None
    """What the hook makes of the guest's dedicated cores once it stops (None: leave them)."""
