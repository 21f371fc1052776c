"""CPU placement rules VT101-VT109: pinning, SMT siblings, cache groups, reserved and offline CPUs.

Why these matter (DESIGN.md): two busy SMT siblings each lose ~30% against a full core; a VM that gets whole
physical cores beats one sharing them with another VM; two VMs in one L2/L3 group interfere; a vCPU
floating over NUMA nodes pays 10%+ CPU and up to ~80% memory bandwidth on remote accesses.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator

from vmtune.core.audit.common import apply_cmd, emulator_off, names, vcpupin_xpath, vcpus_text
from vmtune.core.audit.engine import (
    AuditContext,
    Hit,
    claimed_cpus,
    guest_rule,
    host_rule,
    is_dedicated,
    wants_isolation,
)
from vmtune.core.guest import GuestSpec, iothread_ids
from vmtune.core.intent.model import Settings
from vmtune.core.ledger.pool import is_shared, reservation
from vmtune.core.ledger.tenant import held_cpus, mixed_dedicated
from vmtune.core.placement.sharing import keeps_alone, keeps_cores_whole, needless_shares
from vmtune.core.plan import Level
from vmtune.core.topology.model import Host
from vmtune.core.tuning.guesttopo import threads_per_vcpu_core
from vmtune.cpuset import CpuSet

__all__ = ["vt101", "vt102", "vt103", "vt104", "vt105", "vt106", "vt107", "vt108", "vt109"]

WHOLE_CORES: Settings = (("thread_policy", "isolate"),)
OWN_GROUP: Settings = (("cache_fit", "own"),)
EMULATOR_OFF: Settings = (("emulator", "isolate"),)


def _claims(ctx: AuditContext) -> list[tuple[GuestSpec, CpuSet]]:
    out = []
    for guest in ctx.guests:
        cpus = claimed_cpus(guest, ctx.host)
        if cpus:
            out.append((guest, cpus))
    return out


@guest_rule("VT101", "dedicated intent but vCPUs unpinned", Level.WARNING)
def vt101(g: GuestSpec, ctx: AuditContext) -> Iterator[Hit]:
    if not is_dedicated(g, ctx.host):
        return
    pinned = CpuSet(p.vcpu for p in g.vcpupins if p.cpus)
    unpinned = CpuSet.range(0, g.vcpus - 1) - pinned
    if not unpinned:
        return
    why = "vmtune intent" if g.intent is not None else "dedicated pinning of its other vCPUs"
    if g.kvm_hint_dedicated:
        why = "kvm hint-dedicated"
    yield Hit(
        guest=g,
        location="/domain/cputune",
        message=f"{vcpus_text(unpinned)} of {g.vcpus} have no <vcpupin> despite {why}: they float",
        fix=f"pin every vCPU to its own CPU: {apply_cmd(g)}",
        severity=Level.ERROR if g.intent is not None or g.kvm_hint_dedicated else None,
    )


@guest_rule("VT102", "a vCPU's pin spans NUMA nodes", Level.WARNING)
def vt102(g: GuestSpec, ctx: AuditContext) -> Iterator[Hit]:
    by_cpus: dict[CpuSet, list[int]] = defaultdict(list)
    for pin in g.vcpupins:
        if len(ctx.host.nodes_of(pin.cpus)) > 1:
            by_cpus[pin.cpus].append(pin.vcpu)
    for cpus, vcpus in sorted(by_cpus.items(), key=lambda kv: min(kv[1])):
        yield Hit(
            guest=g,
            location=vcpupin_xpath(min(vcpus)),
            message=f"{vcpus_text(vcpus)} pinned to CPUs {cpus}, which span NUMA nodes "
            f"{ctx.host.nodes_of(cpus)}: remote memory costs 10%+ CPU",
            fix=f"pin each vCPU inside one node: {apply_cmd(g)}",
        )


@host_rule("VT103", "a physical core's SMT siblings are split between domains", Level.WARNING)
def vt103(ctx: AuditContext) -> Iterator[Hit]:
    split_cpus: dict[int, CpuSet] = {}
    partners: dict[int, set[int]] = defaultdict(set)
    claims = _claims(ctx)
    by_id = {id(g): g for g, _ in claims}
    for core in ctx.host.cores:
        if len(core.cpus) < 2:
            continue
        users = [(g, c & core.cpus) for g, c in claims if not c.isdisjoint(core.cpus)]
        # prefer guests share a core when no whole one is left, as their plans say; not with a guest
        # that keeps its cores whole (``keeps_cores_whole``, the planner's rule too)
        if len(users) < 2 or not any(keeps_cores_whole(g.intent) for g, _ in users):
            continue
        for g, mine in users:
            for other, theirs in users:
                # exactly the same CPU in both is an overlap (VT104), not a split core
                if other is not g and mine - theirs and theirs - mine:
                    split_cpus[id(g)] = split_cpus.get(id(g), CpuSet()) | core.cpus
                    partners[id(g)].add(id(other))
    for gid, cpus in split_cpus.items():
        g = by_id[gid]
        yield Hit(
            guest=g,
            location=f"CPUs {cpus}",
            message=f"physical cores of CPUs {cpus} are split with {names(by_id[o] for o in partners[gid])}: "
            "busy SMT siblings each lose ~30%",
            fix=f"give each guest whole cores: {apply_cmd(g, settings=WHOLE_CORES)}",
            settings=WHOLE_CORES,
        )


@host_rule("VT104", "a CPU pinned exclusively by two domains", Level.ERROR)
def vt104(ctx: AuditContext) -> Iterator[Hit]:
    owners: dict[int, list[GuestSpec]] = defaultdict(list)
    claims = _claims(ctx)
    for g, cpus in claims:
        for cpu in cpus:
            owners[cpu].append(g)
    for g, cpus in claims:
        overlap: list[int] = []
        others: list[GuestSpec] = []
        for cpu in cpus:
            rivals = [o for o in owners[cpu] if o is not g]
            if rivals:
                overlap.append(cpu)
                others.extend(rivals)
        if overlap:
            yield Hit(
                guest=g,
                location=f"CPUs {CpuSet(overlap)}",
                message=f"CPUs {CpuSet(overlap)} are also pinned exclusively by {names(others)}",
                fix=f"re-plan with the other guests as tenants: {apply_cmd(g, '--domains DIR')}",
            )
    # A --cpu-policy shared guest may float over the same pool as other shared guests, never over a CPU a
    # dedicated guest owns: that guest would lose the CPU it was promised. Both sides are told.
    pools = [(g, g.vcpu_cpus) for g in ctx.guests if is_shared(g)]
    pools += [(g, pool) for g in ctx.guests if (pool := held_cpus(g).pool)]
    yield from _crossings(pools, claims, "shared pool CPUs {cpus} are pinned exclusively by {others}")
    yield from _crossings(claims, pools, "CPUs {cpus} are also in the shared pool of {others}")


def _crossings(
    mine: list[tuple[GuestSpec, CpuSet]], theirs: list[tuple[GuestSpec, CpuSet]], message: str
) -> Iterator[Hit]:
    """One hit per guest of ``mine`` whose CPUs meet those of guests in ``theirs``."""
    for g, cpus in mine:
        met = [(o, c & cpus) for o, c in theirs if o is not g and not c.isdisjoint(cpus)]
        if met:
            both = CpuSet().union(*(c for _, c in met))
            yield Hit(
                guest=g,
                location=f"CPUs {both}",
                message=message.format(cpus=both, others=names(o for o, _ in met)),
                fix=f"re-plan with the other guests as tenants: {apply_cmd(g, '--domains DIR')}",
            )


@host_rule("VT105", "two domains share an L2/L3 group while a free one exists", Level.WARNING)
def vt105(ctx: AuditContext) -> Iterator[Hit]:
    """The planner's own rule (``core.placement.sharing``): a guest's part of a cache group other guests
    use, the group not full, while an idle group of that level could hold the part - judged for the
    guests that keep their groups alone (``keeps_alone``: ``--cache-fit own``, or no vmtune intent); a
    ``pack`` guest shares on purpose. Each guest's use is what it holds for itself (emulator pins on
    housekeeping CPUs are no use); the reserve is ``--reserve`` plus, for a guest with vmtune intent, the
    one its plans were made with."""
    host = ctx.host
    by_housekeeping: dict[CpuSet, list[tuple[GuestSpec, CpuSet]]] = {}
    for g in ctx.guests:
        if not is_dedicated(g, host) or not keeps_alone(g.intent):
            continue
        reserved, housekeeping = _reserve_of(g, ctx)
        if housekeeping not in by_housekeeping:
            found_uses = ((o, _cache_use(o, host, housekeeping)) for o in ctx.guests)
            by_housekeeping[housekeeping] = [(o, c) for o, c in found_uses if c]
        uses = by_housekeeping[housekeeping]
        for found in needless_shares(host, uses, reserved, g):
            others = [uses[i][0] for i in found.others]
            level = f"L{found.level}"
            yield Hit(
                guest=g,
                location=f"CPUs {found.part}",
                message=f"shares {level} group {found.group} with {names(others)} while an idle {level} "
                f"group with {found.idle_room} CPUs exists",
                fix=f"re-plan into an idle cache group: {apply_cmd(g, '--domains DIR', settings=OWN_GROUP)}",
                settings=OWN_GROUP,
            )


def _reserve_of(g: GuestSpec, ctx: AuditContext) -> tuple[CpuSet, CpuSet]:
    """(reserved, housekeeping) CPUs as the guest's planner saw them: ``--reserve``, and for a guest vmtune
    planned, the reserve of its intent (the default one when it names none)."""
    if g.intent is None:
        return ctx.reserved, ctx.reserved
    split = reservation(ctx.host, g.intent.reserve)
    return split.reserved | ctx.reserved, split.housekeeping | ctx.reserved


def _cache_use(g: GuestSpec, host: Host, housekeeping: CpuSet) -> CpuSet:
    """The CPUs by which a dedicated guest uses cache groups (``Holding.own``, as the planner's tenants)."""
    return held_cpus(g).own(housekeeping) if is_dedicated(g, host) else CpuSet()


@guest_rule("VT106", "emulator/iothreads share CPUs with vCPUs under isolate/realtime intent", Level.WARNING)
def vt106(g: GuestSpec, ctx: AuditContext) -> Iterator[Hit]:
    vcpu_cpus = g.vcpu_cpus
    if not wants_isolation(g) or not vcpu_cpus:
        return
    fix = f"pin the emulator and iothreads off the vCPU cores: {apply_cmd(g, settings=EMULATOR_OFF)}"
    yield from emulator_off(
        g,
        vcpu_cpus,
        fix=fix,
        settings=EMULATOR_OFF,
        unpinned="isolate intent but no <emulatorpin>: the emulator thread runs on the vCPUs' "
        f"CPUs {vcpu_cpus}",
        overlap=lambda shared: f"emulator thread shares CPUs {shared} with the vCPUs under isolate intent",
    )
    pinned_io = {p.iothread for p in g.iothreadpins}
    for pin in g.iothreadpins:
        if not pin.cpus.isdisjoint(vcpu_cpus):
            yield Hit(
                guest=g,
                location=f"/domain/cputune/iothreadpin[@iothread='{pin.iothread}']",
                message=f"iothread {pin.iothread} shares CPUs {pin.cpus & vcpu_cpus} with the vCPUs",
                fix=fix,
                settings=EMULATOR_OFF,
            )
    floating = [i for i in iothread_ids(g.iothread_given_ids, g.iothreads) if i not in pinned_io]
    if floating:
        yield Hit(
            guest=g,
            location="/domain/cputune",
            message=f"iothreads {CpuSet(floating)} have no <iothreadpin>: they run on the vCPUs' CPUs",
            fix=fix,
            settings=EMULATOR_OFF,
        )


@guest_rule(
    "VT107", "pinned to reserved/housekeeping CPUs, or outside isolcpus when isolcpus is set", Level.WARNING
)
def vt107(g: GuestSpec, ctx: AuditContext) -> Iterator[Hit]:
    vcpu_cpus = g.vcpu_cpus
    if not vcpu_cpus:
        return
    reserved = ctx.reserved
    if g.intent is not None and g.intent.reserve is not None:
        reserved = reserved | g.intent.reserve
    bad = vcpu_cpus & reserved
    if bad:
        off_reserve = (("reserve", str(reserved)),)
        yield Hit(
            guest=g,
            location=f"CPUs {bad}",
            message=f"vCPUs pinned to reserved housekeeping CPUs {bad}",
            fix=f"keep guests off the reserved CPUs: {apply_cmd(g, settings=off_reserve)}",
            settings=off_reserve,
        )
    isolated = ctx.host.isolated
    # a mixed guest's shared vCPUs belong outside isolcpus, with the host's other time-shared threads
    outside = (held_cpus(g).vcpu_pins if mixed_dedicated(g) is not None else vcpu_cpus) - isolated
    if isolated and outside and is_dedicated(g, ctx.host):
        yield Hit(
            guest=g,
            location=f"CPUs {outside}",
            message=f"dedicated vCPUs on CPUs {outside} outside isolcpus ({isolated}): host tasks run there",
            fix=f"pin the vCPUs inside isolcpus: {apply_cmd(g)}",
        )


def _pins(g: GuestSpec) -> Iterable[tuple[str, str, CpuSet]]:
    """(xpath, what, cpus) for every CPU affinity the XML sets."""
    if g.vcpu_cpuset is not None:
        yield "/domain/vcpu/@cpuset", "vcpu cpuset", g.vcpu_cpuset
    if g.emulatorpin is not None:
        yield "/domain/cputune/emulatorpin", "emulatorpin", g.emulatorpin
    for io in g.iothreadpins:
        yield f"/domain/cputune/iothreadpin[@iothread='{io.iothread}']", f"iothread {io.iothread}", io.cpus


@guest_rule("VT108", "pinned to an offline or missing CPU", Level.ERROR)
def vt108(g: GuestSpec, ctx: AuditContext) -> Iterator[Hit]:
    online = ctx.host.online
    known = CpuSet(c.id for c in ctx.host.cpus)

    def describe(bad: CpuSet) -> str:
        offline, missing = bad & known, bad - known
        parts = [
            f"offline CPUs {offline}" if offline else "",
            f"CPUs {missing} this host lacks" if missing else "",
        ]
        return " and ".join(p for p in parts if p)

    # (bad CPUs, pin set) -> vCPUs: one line per distinct pin, not per vCPU
    by_pin: dict[CpuSet, list[int]] = defaultdict(list)
    for pin in g.vcpupins:
        if pin.cpus - online:
            by_pin[pin.cpus].append(pin.vcpu)
    for cpus, vcpus in sorted(by_pin.items(), key=lambda kv: min(kv[1])):
        yield Hit(
            guest=g,
            location=vcpupin_xpath(min(vcpus)),
            message=f"{vcpus_text(vcpus)} pinned to {describe(cpus - online)}",
            fix=f"pin to online CPUs: {apply_cmd(g)}",
            # a pin with no online CPU at all makes the start fail; a partial one just shrinks
            severity=Level.ERROR if cpus.isdisjoint(online) else Level.WARNING,
        )
    for xpath, what, cpus in _pins(g):
        if cpus - online:
            yield Hit(
                guest=g,
                location=xpath,
                message=f"{what} names {describe(cpus - online)}",
                fix=f"pin to online CPUs: {apply_cmd(g)}",
                severity=Level.ERROR if cpus.isdisjoint(online) else Level.WARNING,
            )


def _vcpu_cores(g: GuestSpec, host: Host) -> list[int | None] | None:
    """Host core index of each vCPU's pin (None: pin not inside one core); None when a vCPU is unpinned."""
    out: list[int | None] = []
    for vcpu in range(g.vcpus):
        pin = g.pin_of(vcpu)
        if not pin:
            return None
        core = host.core_of(pin.first())
        out.append(core.index if core is not None and pin.issubset(core.cpus) else None)
    return out


@guest_rule("VT109", "guest topology threads disagree with the host siblings the vCPUs sit on", Level.WARNING)
def vt109(g: GuestSpec, ctx: AuditContext) -> Iterator[Hit]:
    """The width the guest may be shown is the planner's (``threads_per_vcpu_core``): t when every host core
    under the guest holds one aligned run of t vCPUs; threads=1 is true only when no two vCPUs share a core.
    A vCPU pinned over more than one core can be nobody's sibling, so such a guest may only show 1; so may
    a mixed guest, whose shared vCPUs float, as long as no two of its dedicated vCPUs share a core. A shared
    guest's vCPUs all float: nothing to judge."""
    cores = _vcpu_cores(g, ctx.host)
    if cores is None or g.vcpus < 2 or is_shared(g):
        return
    threads = g.topology.threads if g.topology is not None else 1
    fix = f"make <topology> match the host cores: {apply_cmd(g)}"
    location = "/domain/cpu/topology" if g.topology is not None else "/domain/cpu"
    if threads > 1 and ctx.host.summary().threads_per_core < 2:
        yield Hit(
            guest=g,
            location=location,
            message=f"guest topology has {threads} threads per core but the host has no SMT",
            fix=fix,
        )
        return
    dedicated = mixed_dedicated(g)
    judged = range(g.vcpus) if dedicated is None else list(dedicated)
    firsts = [pin.first() for v in judged if (pin := g.pin_of(v)) and cores[v] is not None]
    alone = threads_per_vcpu_core(ctx.host, firsts) == 1
    if dedicated is not None:
        cores = [cores[v] if v in dedicated else None for v in range(g.vcpus)]
        shown: int | None = 1 if alone else None
    else:
        shown = (1 if alone else None) if None in cores else threads_per_vcpu_core(ctx.host, firsts)
    if threads == shown:
        return
    if threads > 1:
        yield Hit(
            guest=g,
            location=location,
            message=f"guest sees {vcpus_text(_misgrouped(cores, threads))} as SMT siblings ({threads} "
            "threads/core) but they are not pinned to one host core each",
            fix=fix,
        )
        return
    per_core: dict[int | None, list[int]] = defaultdict(list)
    for vcpu, core in enumerate(cores):
        per_core[core].append(vcpu)
    shared = sorted(v for core, vs in per_core.items() if core is not None and len(vs) > 1 for v in vs)
    yield Hit(
        guest=g,
        location=location,
        message=f"{vcpus_text(shared)} sit on SMT siblings of shared host cores but the guest "
        "topology has 1 thread per core",
        fix=fix,
    )


def _misgrouped(cores: list[int | None], threads: int) -> list[int]:
    """vCPUs of the guest's thread groups that are not one host core each, or whose core another group
    shares too (every vCPU if none is)."""
    bad: list[int] = []
    seen: dict[int | None, int] = {}
    for start in range(0, len(cores) - threads + 1, threads):
        group = cores[start : start + threads]
        if None in group or len(set(group)) != 1 or group[0] in seen:
            bad.extend(range(start, start + threads))
        seen.setdefault(group[0], start)
    return bad or list(range(len(cores)))
