"""``--cache-share``: exclusive last-level cache ways for a guest's vCPUs (libvirt ``<cachetune>``). Pure.

What libvirt does at start (``src/util/virresctrl.c``): the free ways of a cache instance are every bit
of ``cbm_mask`` minus the default group's mask and every other group's; each ``<cache size=>`` must be a
whole number of ways (size / way = cache size / ``cbm_mask`` bits), at least ``min_cbm_bits`` of them,
never the whole cache; it takes the smallest contiguous free run that holds them. So vmtune asks for
whole ways and checks, per cache instance (:func:`cache_budgets`), that the ways every tenant's
``<cachetune>`` asks for plus this guest's pack into the contiguous runs of ways the default group, the
ways shared with other agents (``shareable_bits``) and the groups libvirt did not make leave free
(``Budget.holds``: largest ask first, each into the smallest run that holds it, as libvirt picks), and
that a CLOSID is left (``num_closids`` counts the default group). Each ask is contiguous, so a sum that
fits split runs is not enough: 4 free ways as 2 + 2 hold no 3-way guest.

The caches are the L3 instances the guest's vCPUs are pinned on (the host topology's cache ids, which
are resctrl's ids); one ``<cachetune>`` covers every vCPU, so the guest takes one CLOSID.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from vmtune.core.guest import CacheAlloc, CacheTune, GuestSpec
from vmtune.core.intent.values import CacheShare
from vmtune.core.plan import Level, Note
from vmtune.core.topology.caps import HostCaps
from vmtune.core.topology.model import Host
from vmtune.core.topology.resctrl import Resctrl, ResctrlResource
from vmtune.cpuset import CpuSet
from vmtune.errors import InfeasibleError

__all__ = ["CACHE_LEVEL", "Budget", "cache_budgets", "closids_left", "plan_cachetune", "ways_of"]

CACHE_LEVEL = 3
"""The level ``--cache-share`` allocates: the last-level cache neighbours fight over."""
XPATH = "/domain/cputune/cachetune"
# libvirt's machine name (virDomainDriverGenerateMachineName): qemu-<domain id>-<name, sanitized>
_LIBVIRT_GROUP = re.compile(r"qemu-\d+-(.+)")


@dataclass(frozen=True, slots=True, kw_only=True)
class Budget:
    """One cache instance of one resource: its ways, what is left for exclusive guest use, who asks."""

    resource: ResctrlResource
    cache_id: int
    way_bytes: int | None
    """Cache size / ways; None when the host does not say the size or it does not split evenly."""
    free_ways: int
    """Ways no one else holds: cbm minus the default group, shareable bits and foreign groups."""
    runs: tuple[int, ...] = ()
    """The contiguous runs those free ways form, largest first (each ask must sit in one)."""
    asked: tuple[tuple[str, int], ...] = ()
    """(guest, ways) each tenant's ``<cachetune>`` asks for on this instance."""

    @property
    def used(self) -> int:
        return sum(ways for _, ways in self.asked)

    def holds(self, *extra: int) -> bool:
        """Every ask (and ``extra``) packs into the free runs: the largest first, each into the smallest
        run that holds it (libvirt's choice at start; a start order exists that gets them all)."""
        left = sorted(self.runs)
        for ways in sorted([w for _, w in self.asked] + list(extra), reverse=True):
            fit = next((i for i, run in enumerate(left) if run >= ways), None)
            if fit is None:
                return False
            left[fit] -= ways
            left.sort()
        return True


def free_runs(mask: int) -> tuple[int, ...]:
    """Lengths of the runs of set bits in ``mask``, largest first."""
    runs = [len(bits) for bits in bin(mask)[2:].split("0") if bits]
    return tuple(sorted(runs, reverse=True))


def _sanitized(name: str) -> str:
    return "".join(ch for ch in name if ch.isalnum() or ch in "-_.")


def _libvirt_owner(group: str, names: Iterable[str]) -> str | None:
    """The guest a libvirt-made resctrl group belongs to (counted by its XML instead), or None."""
    m = _LIBVIRT_GROUP.fullmatch(group)
    if m is None:
        return None
    return next((n for n in names if m.group(1).startswith(_sanitized(n) + "-")), None)


def ways_of(size_bytes: int, way_bytes: int | None) -> int:
    """Ways a ``<cache size=>`` takes (rounded up, as the hardware can only give whole ways)."""
    if not way_bytes:
        return 0
    return -(-size_bytes // way_bytes)


def _way_bytes(host: Host, cache_id: int, resource: ResctrlResource) -> int | None:
    group = next((g for g in host.groups(resource.level) if g.cache_id == cache_id), None)
    if group is None or group.size_kib is None or (group.size_kib * 1024) % resource.ways:
        return None
    return group.size_kib * 1024 // resource.ways


def cache_budgets(
    *,
    host: Host,
    resctrl: Resctrl,
    guests: Sequence[GuestSpec],
    level: int = CACHE_LEVEL,
    also: Sequence[str] = (),
) -> list[Budget]:
    """Every instance of every resource of ``level``: free ways and what ``guests`` ask of them. The
    resctrl groups libvirt made for ``guests`` (and for the guests named in ``also``: the one being
    planned, whose running group its new plan replaces) are counted by their XML, not by their masks.

    The planner and the audit rule both judge by this one function."""
    names = [g.name for g in guests] + list(also)
    out: list[Budget] = []
    for res in resctrl.resources_at(level):
        ids = sorted({i for r, i, _ in resctrl.default.masks if r == res.name})
        for cache_id in ids:
            held = res.shareable_bits | (resctrl.default.mask(res.name, cache_id) or 0)
            for group in resctrl.groups:
                mask = group.mask(res.name, cache_id)
                if mask is not None and _libvirt_owner(group.name, names) is None:
                    held |= mask
            way = _way_bytes(host, cache_id, res)
            asked = tuple(
                (
                    g.name,
                    sum(
                        ways_of(c.size_bytes, way)
                        for c in t.caches
                        if (c.level, c.type, c.id) == (level, res.type, cache_id)
                    ),
                )
                for g in guests
                for t in g.cachetunes
            )
            out.append(
                Budget(
                    resource=res,
                    cache_id=cache_id,
                    way_bytes=way,
                    free_ways=(res.cbm_mask & ~held).bit_count(),
                    runs=free_runs(res.cbm_mask & ~held),
                    asked=tuple(a for a in asked if a[1]),
                )
            )
    return out


def closids_left(
    resctrl: Resctrl, guests: Sequence[GuestSpec], level: int = CACHE_LEVEL, also: Sequence[str] = ()
) -> int:
    """Control groups the hardware still holds once the default group, foreign groups and every guest's
    allocating ``<cachetune>`` have theirs (``also``: as in :func:`cache_budgets`)."""
    names = [g.name for g in guests] + list(also)
    total = min((r.num_closids for r in resctrl.resources_at(level)), default=0)
    foreign = sum(1 for grp in resctrl.groups if _libvirt_owner(grp.name, names) is None)
    tunes = sum(1 for g in guests for t in g.cachetunes if t.caches)
    return total - 1 - foreign - tunes


def _warning(message: str) -> Note:
    return Note(topic="cache", level=Level.WARNING, xpath=XPATH, message=message)


def _wanted_ways(share: CacheShare, res: ResctrlResource) -> int:
    # a share rounds half up: 25% of 11 ways is 3
    want = share.ways if share.ways is not None else ((share.percent or 0) * res.ways * 2 + 100) // 200
    return max(want, res.min_cbm_bits)


def _gate(guest: GuestSpec, caps: HostCaps | None, vcpu_cpus: CpuSet, notes: list[Note]) -> Resctrl | None:
    resctrl = caps.resctrl if caps is not None else None
    if resctrl is None:
        notes.append(
            _warning(
                "--cache-share: no cache allocation on this host (/sys/fs/resctrl not "
                "mounted, or a CPU without RDT CAT / L3 QoS): no <cachetune> written"
            )
        )
        return None
    if not vcpu_cpus:
        notes.append(
            _warning(
                f"--cache-share: {guest.name}'s vCPUs are not pinned, so their cache "
                "instances are unknown: no <cachetune> written"
            )
        )
        return None
    return resctrl


def plan_cachetune(
    *,
    host: Host,
    guest: GuestSpec,
    share: CacheShare | None,
    caps: HostCaps | None,
    tenants: Sequence[GuestSpec],
    vcpu_cpus: CpuSet,
    force: bool = False,
) -> tuple[tuple[CacheTune, ...] | None, tuple[Note, ...]]:
    """The ``<cachetune>`` for ``guest`` pinned on ``vcpu_cpus`` (None: leave it alone), and why.

    InfeasibleError (unless ``force``) when the ways or CLOSIDs are not there."""
    if share is None:
        return None, ()
    notes: list[Note] = []
    if share.off:
        if guest.cachetunes:
            notes.append(Note(topic="cache", message="--cache-share none: <cachetune> removed", xpath=XPATH))
        return (), tuple(notes)
    resctrl = _gate(guest, caps, vcpu_cpus, notes)
    resources = resctrl.resources_at(CACHE_LEVEL) if resctrl is not None else ()
    if resctrl is None or not resources:
        if resctrl is not None:
            notes.append(_warning(f"--cache-share: resctrl allocates no L{CACHE_LEVEL} here"))
        return None, tuple(notes)
    ids = sorted(
        {
            g.cache_id
            for g in host.groups(CACHE_LEVEL)
            if not g.cpus.isdisjoint(vcpu_cpus) and g.cache_id is not None
        }
    )
    if not ids:
        notes.append(_warning("--cache-share: the host names no L3 cache id for the vCPUs' CPUs"))
        return None, tuple(notes)
    others = [t for t in tenants if t.name != guest.name]
    found = cache_budgets(host=host, resctrl=resctrl, guests=others, also=(guest.name,))
    budgets = {(b.resource.name, b.cache_id): b for b in found}
    caches: list[CacheAlloc] = []
    short: list[str] = []
    for res in resources:
        want = _wanted_ways(share, res)
        for cache_id in ids:
            budget = budgets.get((res.name, cache_id))
            if budget is None or budget.way_bytes is None:
                notes.append(
                    _warning(
                        f"--cache-share: L{CACHE_LEVEL} cache {cache_id}: the size of a "
                        "way is unknown (no cache size, or resctrl lacks the id)"
                    )
                )
                return None, tuple(notes)
            if not budget.holds(want):
                short.append(_shortfall(budget, want, resctrl))
            caches.append(
                CacheAlloc(id=cache_id, level=CACHE_LEVEL, type=res.type, size_bytes=want * budget.way_bytes)
            )
    left = closids_left(resctrl, others, also=(guest.name,))
    if left < 1:
        short.append(
            f"every CLOSID is taken ({min(r.num_closids for r in resources)} in all, the default "
            "group's included): stop or untune another cachetune guest"
        )
    tune = CacheTune(vcpus=CpuSet.range(0, guest.vcpus - 1), caches=tuple(caches))
    notes.append(Note(topic="cache", xpath=XPATH, message=_summary(share, tune)))
    if short:
        why = f"{guest.name}: --cache-share {share}: " + "; ".join(short)
        if not force:
            raise InfeasibleError(f"{why}; or pass --force to write it anyway (libvirt refuses the start)")
        notes.append(_warning(f"--force: {why}"))
    return (tune,), tuple(notes)


def _shortfall(budget: Budget, want: int, resctrl: Resctrl) -> str:
    res = budget.resource
    who = ", ".join(f"{name} {ways}" for name, ways in budget.asked) or "no other guest"
    default = resctrl.default.mask(res.name, budget.cache_id) or 0
    runs = "+".join(map(str, budget.runs)) or "0"
    return (
        f"{res.name} cache {budget.cache_id} needs {want} contiguous way(s), "
        f"{budget.free_ways - budget.used} free: {budget.free_ways} of its {res.ways} are outside the "
        f"default group ({default:x}), shareable bits ({res.shareable_bits:x}) and other groups, in runs "
        f"of {runs}, and guests ask for {budget.used} ({who}); shrink the default group "
        f"(echo '{res.name}:{budget.cache_id}=<fewer bits>' > {resctrl.source}/schemata) or ask for less"
    )


def _summary(share: CacheShare, tune: CacheTune) -> str:
    parts = [f"{c.type} L{c.level} cache {c.id}: {c.size_bytes // 1024} KiB" for c in tune.caches]
    return (
        f"--cache-share {share}: vCPUs {tune.vcpus} get exclusive ways of "
        + ", ".join(parts)
        + " (libvirt picks the ways at start, out of those no other guest or the default group holds)"
    )
