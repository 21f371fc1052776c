"""The audit engine behind ``vmtune check``: Finding, Rule and its declaring decorators, ``run_rules``.

Rules are small pure functions, one module per family in ``vmtune.core.audit`` (cpu VT1xx, memory
VT2xx, windows VT3xx, realtime VT4xx), each declared by its decorator (code, title, default severity); the
family and the docs page follow from the code. A *guest rule* looks at one guest (plus the host and the
other guests through the context); a *host rule* looks at every guest at once (VT103/VT104/VT105: shared
cores, overlapping pins, shared cache groups) and says which guest each hit belongs to. The codes and titles
are the public contract (DESIGN.md's catalog): never renumber, never reuse a retired code.

"Dedicated intent" (what VT101/VT103/VT104/VT105 take as "this guest owns its CPUs") is decided once,
here, in :func:`is_dedicated`:

* the guest carries vmtune intent in ``<metadata>`` (every vmtune profile pins whole cores), or
* ``<kvm><hint-dedicated state='on'/>`` tells the guest its vCPUs never get preempted, or
* a vCPU runs ``SCHED_FIFO``/``SCHED_RR`` (realtime without dedicated CPUs starves the host), or
* every vCPU that has a ``<vcpupin>`` is pinned inside one physical core (1:1 or core pinning), which is
  how people write dedicated pinning by hand.

A guest whose pins float over a node or the host (``cpuset='0-15'``) is *not* dedicated: it shares on
purpose, so it neither claims CPUs nor triggers the cross-guest rules. A ``--cpu-policy mixed`` guest is
dedicated for the vCPUs of its ``dedicated-mask`` only: it claims their CPUs (``held_cpus``), while its
other vCPUs float over the shared pool as a shared guest's do.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from vmtune.core.guest import GuestSpec
from vmtune.core.intent.model import CpuPolicy, EmulatorPolicy, OsFamily, Profile, Settings
from vmtune.core.ledger.tenant import held_cpus
from vmtune.core.plan import Level
from vmtune.core.topology.caps import HostCaps
from vmtune.core.topology.model import Host
from vmtune.cpuset import CpuSet
from vmtune.errors import InputError

__all__ = [
    "AuditContext",
    "Family",
    "Finding",
    "GuestRule",
    "Hit",
    "HostRule",
    "Rule",
    "catalog",
    "claimed_cpus",
    "guest_rule",
    "host_rule",
    "is_dedicated",
    "is_realtime",
    "is_windows",
    "parse_codes",
    "realtime_vcpus",
    "run_rules",
    "wants_isolation",
]

RT_SCHEDULERS = frozenset({"fifo", "rr"})


class Family(StrEnum):
    CPU = "cpu"
    MEMORY = "memory"
    WINDOWS = "windows"
    REALTIME = "realtime"


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """One problem ``vmtune check`` reports."""

    code: str
    severity: Level
    guest: str
    source: str
    """The guest's file path or ``libvirt:NAME`` (SARIF's artifact location)."""
    location: str
    """An XPath into the domain XML (``/domain/cputune/vcpupin[@vcpu='2']``) or a host CPU list."""
    message: str
    fix: str
    """What to do: the vmtune command or the XML change."""
    settings: Settings = ()
    """The knobs the fix's ``vmtune apply`` sets (printed in ``fix``), which ``check --fix`` plans with."""
    line: int | None = None
    """1-based line of ``location`` in ``source`` (the nearest existing ancestor for a missing element);
    None when unknown. Rules never set it: the CLI resolves it from the file (``vmtune.xmlmap.lines``)."""
    column: int | None = None
    """1-based column (Unicode code points) of that element's ``<``, when known."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Hit:
    """What a rule function yields; the runner adds the rule's code and default severity."""

    guest: GuestSpec
    location: str
    message: str
    fix: str
    settings: Settings = ()
    """The knobs ``fix`` re-plans with (``common.apply_cmd``'s ``settings``)."""
    severity: Level | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditContext:
    host: Host
    guests: tuple[GuestSpec, ...]
    """Every guest on the host: the ones being checked and the other tenants."""
    caps: HostCaps = field(default_factory=HostCaps)
    reserved: CpuSet = field(default_factory=CpuSet)
    """Housekeeping CPUs no guest should get (``--reserve``)."""

    def others(self, guest: GuestSpec) -> Iterable[GuestSpec]:
        return (g for g in self.guests if g is not guest)


GuestRule = Callable[[GuestSpec, AuditContext], Iterable[Hit]]
HostRule = Callable[[AuditContext], Iterable[Hit]]


_FAMILY_OF_DIGIT = {"1": Family.CPU, "2": Family.MEMORY, "3": Family.WINDOWS, "4": Family.REALTIME}


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    """One audit rule, declared once where its check lives (``@guest_rule``/``@host_rule``): the catalog,
    ``check --help``, SARIF and the docs test all read it from here."""

    code: str
    title: str
    """The one-line title from DESIGN.md's catalog (shown in ``check --help`` and in SARIF)."""
    severity: Level
    check_guest: GuestRule | None = None
    check_host: HostRule | None = None

    def __post_init__(self) -> None:
        if not re.fullmatch(r"VT[1-9]\d\d", self.code) or self.code[2] not in _FAMILY_OF_DIGIT:
            raise ValueError(f"rule code {self.code!r}: expected VTnnn with a known family digit")

    @property
    def family(self) -> Family:
        """The hundreds digit names the family (VT1xx cpu, VT2xx memory, VT3xx windows, VT4xx realtime)."""
        return _FAMILY_OF_DIGIT[self.code[2]]

    @property
    def doc(self) -> str:
        """The rule's page, relative to the repository root."""
        return f"docs/rules/{self.code}.md"

    def run(self, targets: Sequence[GuestSpec], ctx: AuditContext) -> Iterable[Hit]:
        if self.check_host is not None:
            wanted = {id(g) for g in targets}
            yield from (hit for hit in self.check_host(ctx) if id(hit.guest) in wanted)
        if self.check_guest is not None:
            for guest in targets:
                yield from self.check_guest(guest, ctx)


def guest_rule(code: str, title: str, severity: Level) -> Callable[[GuestRule], Rule]:
    """Declare the decorated function as the check of rule ``code`` on one guest at a time."""
    return lambda check: Rule(code=code, title=title, severity=severity, check_guest=check)


def host_rule(code: str, title: str, severity: Level) -> Callable[[HostRule], Rule]:
    """Declare the decorated function as the check of rule ``code`` over every guest at once."""
    return lambda check: Rule(code=code, title=title, severity=severity, check_host=check)


# -- guest classification shared by the rules ---------------------------------------------------------


def realtime_vcpus(guest: GuestSpec) -> CpuSet:
    """vCPU ids with a realtime scheduler (``<vcpusched scheduler='fifo|rr'>``)."""
    return CpuSet().union(*(s.vcpus for s in guest.vcpusched if s.scheduler in RT_SCHEDULERS))


def is_realtime(guest: GuestSpec) -> bool:
    return bool(realtime_vcpus(guest)) or (guest.intent is not None and guest.intent.has(Profile.REALTIME))


def is_windows(guest: GuestSpec) -> bool:
    if guest.intent is not None and (
        guest.intent.has(Profile.WINDOWS) or guest.intent.os is OsFamily.WINDOWS
    ):
        return True
    return guest.os_family is OsFamily.WINDOWS


def wants_isolation(guest: GuestSpec) -> bool:
    """Emulator/iothreads must stay off the vCPUs: isolate or realtime intent, or realtime vCPUs."""
    if realtime_vcpus(guest):
        return True
    intent = guest.intent
    if intent is None:
        return False
    if intent.emulator is not None:
        return intent.emulator is EmulatorPolicy.ISOLATE
    return intent.has(Profile.LATENCY) or intent.has(Profile.REALTIME)


def _core_pinned(guest: GuestSpec, host: Host) -> bool:
    if not guest.vcpupins:
        return False
    for pin in guest.vcpupins:
        core = host.core_of(pin.cpus.first()) if pin.cpus else None
        if core is None or not pin.cpus.issubset(core.cpus):
            return False
    return True


def is_dedicated(guest: GuestSpec, host: Host) -> bool:
    """Does this guest mean to own its CPUs? (see the module docstring for why these signals)."""
    if guest.intent is not None and guest.intent.cpu_policy is CpuPolicy.SHARED:
        return False  # time-shares its pool on purpose (``--cpu-policy shared``)
    return (
        guest.intent is not None
        or bool(guest.kvm_hint_dedicated)
        or bool(realtime_vcpus(guest))
        or _core_pinned(guest, host)
    )


def claimed_cpus(guest: GuestSpec, host: Host) -> CpuSet:
    """Host CPUs a dedicated guest's vCPUs own (empty for shared/floating guests).

    Only vCPU pins count: emulator and iothread pins on shared housekeeping CPUs are normal.
    """
    return held_cpus(guest).vcpu_pins if is_dedicated(guest, host) else CpuSet()


# -- running -------------------------------------------------------------------------------------------


def catalog() -> tuple[Rule, ...]:
    """Every rule, in code order."""
    from vmtune.core.audit.catalog import ALL_RULES  # the rule modules import this module's types

    return ALL_RULES


def parse_codes(text: str, *, what: str) -> frozenset[str]:
    """``VT101,VT2`` -> the catalog codes it names; a prefix selects a family (``VT2``, ``VT``)."""
    codes = {r.code for r in catalog()}
    out: set[str] = set()
    for raw in text.split(","):
        item = raw.strip().upper()
        if not item:
            continue
        matched = {c for c in codes if c.startswith(item)}
        if not matched:
            raise InputError(f"{what}: unknown rule code {raw.strip()!r} (see `vmtune check --help`)")
        out |= matched
    return frozenset(out)


def run_rules(
    host: Host,
    targets: Sequence[GuestSpec],
    *,
    tenants: Sequence[GuestSpec] = (),
    caps: HostCaps | None = None,
    reserved: CpuSet | None = None,
    select: frozenset[str] | None = None,
    ignore: frozenset[str] = frozenset(),
) -> tuple[Finding, ...]:
    """Evaluate the catalog on ``targets``; ``tenants`` only take part in the cross-guest rules.

    Findings come back ordered by guest (in ``targets`` order), then code, then location, so that output
    is stable across runs.
    """
    ctx = AuditContext(
        host=host,
        guests=(*targets, *tenants),
        caps=caps or HostCaps(),
        reserved=reserved or CpuSet(),
    )
    order = {id(g): i for i, g in enumerate(targets)}
    found: list[tuple[int, Finding]] = []
    for rule in catalog():
        if (select is not None and rule.code not in select) or rule.code in ignore:
            continue
        for hit in rule.run(targets, ctx):
            finding = Finding(
                code=rule.code,
                severity=hit.severity or rule.severity,
                guest=hit.guest.name,
                source=hit.guest.source,
                location=hit.location,
                message=hit.message,
                fix=hit.fix,
                settings=hit.settings,
            )
            found.append((order[id(hit.guest)], finding))
    found.sort(key=lambda pair: (pair[0], pair[1].code, pair[1].location, pair[1].message))
    return tuple(f for _, f in found)
