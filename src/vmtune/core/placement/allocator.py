"""Pick a guest's CPUs inside one placement domain (a NUMA node, or the whole host with ``--numa off``).

Pure and deterministic, in the style of kubelet's ``cpu_assignment.go``: the free pool is seen through the
thread policy as *units* per physical core, then the cache hierarchy is walked top-down:

1. a core's units: ``prefer``/``require`` use every thread of a wholly free core (``prefer`` may fall back
   to the free threads of a core another ``prefer`` guest half-uses, but only in a second pass when no
   whole-core solution exists: ``core.numa`` leaves out the cores of guests that keep them whole);
   ``isolate`` uses one thread of a wholly free core and leaves its siblings empty;
2. at each grouping level (NUMA node when the domain is the whole host, then the core kind on hybrid
   hosts, then each cache level coarsest first that splits a node into several groups of cores -
   ``sharing.split_levels``: a private per-core L2 or an L3 that is the whole node adds nothing), if one
   group can hold the request, choose it by *best fit*:
   - never a needless share (``sharing.needless_share``, the rule VT105 checks too): a ``--cache-fit
     own`` guest takes a group other guests use only when it fills its last free units exactly (any size
     of guest may close any other guest's hole), or when no idle group of the level on the guest's
     node(s) can hold the guest's part; and no guest makes a needless share for the one guest already in
     a group when that guest keeps alone (``sharing.keeps_alone``: joining its group with CPUs left over
     while an idle group of its node could hold its part). A ``pack`` guest otherwise shares freely;
   - then the group that holds the guest in the fewest groups of the finest level below (as few cache
     groups as possible comes before fragmentation);
   - then the one whose free count is the smallest that still holds the guest - so a hole left beside the
     reserved core or by another guest is filled before a whole group is broken, and big groups stay
     whole for big guests; ties go to the partly used group, then the lowest core id; latency guests
     look at the largest cache first (V-Cache dies);
   the choice is compared across nodes too (``core.numa``): fewest groups and no needless share first,
   then the node with the least room, then the rest of this fit;
3. if no single group can hold it, the fewest groups: as many as the largest free groups first need
   (whole idle groups first among equals) until the remainder fits in one group, which is chosen by rule
   2 (best fit); among the sets of that many groups, the one with no needless share, then spanning the
   fewest groups of the finer level, then sharing the fewest with other guests (ties: the largest first);
4. inside the last group, whole cores in id order, siblings kept together so the guest sees them as
   thread pairs.

``--cache-fit spread`` (memory-bandwidth-bound guests) replaces rules 2-3 at the cache levels: one core
per cache group in turn, idle groups first (the roomiest first), so the guest's vCPUs sit behind as many
L3s (memory controllers' bandwidth) as it has cores, up to the groups the domain has.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations
from math import comb

from vmtune.core.intent.model import ThreadPolicy
from vmtune.core.ledger.pool import Tenant
from vmtune.core.placement.sharing import needless_share, neighbour_needless
from vmtune.core.placement.units import (
    CONTAINER_LEVELS,
    KIND_LEVEL,
    NODE_LEVEL,
    PRIVATE,
    CoreView,
    capacity,
    core_views,
    cores_in,
    group_key,
    grouping_levels,
    idle_rooms,
    is_cache_level,
    shares_cache,
)
from vmtune.core.topology.model import Core, Host
from vmtune.cpuset import CpuSet

__all__ = [
    "KIND_LEVEL",
    "NODE_LEVEL",
    "CoreView",
    "DomainPick",
    "GroupUse",
    "core_views",
    "grouping_levels",
    "idle_rooms",
    "is_cache_level",
    "pick_in_domain",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupUse:
    level: int
    key: int
    cpus: CpuSet
    idle: bool
    """No other guest had a CPU in this group."""
    whole: bool
    """The guest takes all of the group's usable units."""
    reason: str = ""
    """Why a group other guests use was chosen (empty for idle groups)."""


@dataclass(slots=True)
class _Ctx:
    host: Host
    used: CpuSet
    """CPUs by which other guests use cache groups (``Tenant.cache``)."""
    caches: tuple[tuple[CpuSet, bool], ...]
    """Each other guest's ``Tenant.cache`` and ``Tenant.alone``: whose part of a group joining it would
    make a needless share."""
    idle_room: dict[int, int]
    """Level -> the most free CPUs of one idle group of it where the whole guest could go instead."""
    local_room: dict[int, int]
    """The same over the domain alone: where one part of a guest spanning groups could go instead (any
    other place would span another node)."""
    total: int
    """vCPUs of the pick: a part of that many is the whole guest."""
    latency: bool
    policy: ThreadPolicy
    free: CpuSet | None = None
    """The pass's free CPUs: a group's CPUs left free after the guest (threads of half-used cores too)."""
    spread: bool = False
    """``--cache-fit spread``: one core per cache group in turn."""
    own: bool = False
    """``--cache-fit own``: the guest's own needless shares count (``sharing.keeps_alone``)."""
    uses: list[GroupUse] = field(default_factory=list)
    quality: tuple[int, ...] | None = None
    needless: int = 0
    """Needless shares taken (``sharing.needless_share``) at every level: 0 unless nothing else fits."""
    sizes: dict[tuple[int, int], int] = field(default_factory=dict)
    """(level, key) -> cores of the whole group on the host."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DomainPick:
    cpus: tuple[int, ...]
    """Chosen host CPUs in guest order (siblings adjacent)."""
    cores: tuple[Core, ...]
    groups: tuple[GroupUse, ...]
    quality: tuple[int, ...]
    """(groups spanned at the top grouping level, needless shares, finest groups spanned inside the chosen
    group, cache rank, free units of the chosen group, idle): lower is a better cache fit; ``core.numa``
    compares it across nodes."""
    cpu_set: CpuSet = field(init=False, repr=False, compare=False)
    """``cpus`` as a set, built once: membership in a tuple of thousands of CPUs per vCPU is quadratic."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "cpu_set", CpuSet(self.cpus))


def pick_in_domain(
    *,
    host: Host,
    views: Sequence[CoreView],
    vcpus: int,
    policy: ThreadPolicy,
    levels: Sequence[int],
    tenants: Sequence[Tenant],
    latency: bool,
    idle_room: dict[int, int] | None = None,
    spread: bool = False,
    free: CpuSet | None = None,
    local_room: dict[int, int] | None = None,
    own: bool = False,
) -> DomainPick | None:
    """Choose ``vcpus`` CPUs among ``views``; None when they don't hold that many.

    ``idle_room`` is ``idle_rooms`` where the whole guest could go instead, ``local_room`` where a part of
    it could (``sharing``: the guest's own node(s)); without them, both are computed over ``views`` (a
    node's pick: that node's idle groups). ``free`` (the pass's
    free CPUs) counts what a group has left after the guest as VT105 counts it; without it, the units.
    """
    if capacity(views) < vcpus:
        return None
    used = CpuSet().union(*(t.cache for t in tenants))
    here = idle_rooms(host, views, levels, used) if idle_room is None or local_room is None else {}
    caches = tuple((t.cache, t.alone) for t in tenants if t.cache)
    whole_room = here if idle_room is None else idle_room
    ctx = _Ctx(host=host, used=used, caches=caches, idle_room=whole_room,
               local_room=here if local_room is None else local_room, total=vcpus, latency=latency,
               policy=policy, free=free, spread=spread, own=own)  # fmt: skip
    chosen = _select(list(views), vcpus, tuple(levels), ctx, top=True)
    taken: list[tuple[Core, tuple[int, ...]]] = []
    count = 0
    for view in chosen:
        if count >= vcpus:
            break
        units = view.units[: vcpus - count]
        taken.append((view.core, units))
        count += len(units)
    # guest order follows host core order: readable pins, and a core's threads stay adjacent vCPUs
    taken.sort(key=lambda item: item[0].index)
    top = ctx.quality or (0, 0, 0, 0, 0, 0)
    return DomainPick(
        cpus=tuple(cpu for _, units in taken for cpu in units),
        cores=tuple(core for core, _ in taken),
        groups=tuple(ctx.uses),
        quality=(top[0], ctx.needless, *top[2:]),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class _Group:
    key: int
    views: list[CoreView]
    cpus: CpuSet
    cap: int
    idle: bool
    """No other guest uses the group (``Tenant.cache``); always True for a pseudo group."""
    cache: bool
    """A real cache group of several cores, where sharing is weighed (not a node, kind or private pool)."""
    size_kib: int
    per_core: int
    """Host CPUs one unit stands for: a whole core under ``isolate``, else one thread."""


def _group_cores(ctx: _Ctx, level: int, key: int) -> int:
    """Physical cores of cache group ``key`` on the host (1 for a core without cache data)."""
    size = ctx.sizes.get((level, key))
    if size is None:
        if level in CONTAINER_LEVELS:
            size = max(1, sum(1 for c in ctx.host.cores if c.cpus and group_key(c, level) == key))
        else:
            size = cores_in(ctx.host, key) if 0 <= key < len(ctx.host.caches) else 1
        ctx.sizes[level, key] = size
    return size


def _groups(views: Sequence[CoreView], level: int, ctx: _Ctx) -> list[_Group]:
    by_key: dict[int, list[CoreView]] = {}
    for view in views:
        key = group_key(view.core, level)
        if shares_cache(level) and _group_cores(ctx, level, key) <= 1:
            # a private cache (Intel P-core L2) shares nothing: such cores are one pool at this level
            key = PRIVATE
        by_key.setdefault(key, []).append(view)
    out: list[_Group] = []
    for key, members in by_key.items():
        cache = False
        if level == NODE_LEVEL:
            node = ctx.host.node(key)
            gcpus = node.cpus if node else CpuSet().union(*(v.core.cpus for v in members))
            size_kib = 0
        elif level == KIND_LEVEL or (level in CONTAINER_LEVELS and key != PRIVATE):
            gcpus = CpuSet().union(*(c.cpus for c in ctx.host.cores if group_key(c, level) == key))
            size_kib = key if level == KIND_LEVEL else 0  # latency guests: the bigger kind first
        elif key >= 0 and key < len(ctx.host.caches):
            group = ctx.host.caches[key]
            gcpus, size_kib, cache = group.cpus, group.size_kib or 0, True
        else:
            gcpus = CpuSet().union(*(v.core.cpus for v in members))
            size_kib = 0
        per_core = max(len(v.core.cpus) for v in members) if ctx.policy is ThreadPolicy.ISOLATE else 1
        out.append(
            _Group(
                key=key,
                views=members,
                cpus=gcpus,
                cap=capacity(members),
                idle=not cache or gcpus.isdisjoint(ctx.used),
                cache=cache,
                size_kib=size_kib,
                per_core=per_core,
            )
        )
    out.sort(key=lambda g: g.views[0].core.index)
    return out


def _span(views: Sequence[CoreView], vcpus: int, ctx: _Ctx, finest: int | None) -> int:
    """Groups of the ``finest`` level ``vcpus`` would span inside ``views``, largest free first (rule 3)."""
    if finest is None:
        return 1
    caps: dict[int, int] = {}
    for view in views:
        key = group_key(view.core, finest)
        if shares_cache(finest) and _group_cores(ctx, finest, key) <= 1:
            key = PRIVATE
        caps[key] = caps.get(key, 0) + len(view.units)
    need = spanned = 0
    for cap in sorted(caps.values(), reverse=True):
        if need >= vcpus:
            break
        need += cap
        spanned += 1
    return spanned


def _needless(group: _Group, count: int, level: int, ctx: _Ctx) -> bool:
    """Taking ``count`` units of ``group`` would be a needless share (``sharing.needless_share``)."""
    if not group.cache:
        return False
    part = count * group.per_core
    left = group.cap - count if ctx.free is None else len(group.cpus & ctx.free) - part
    rooms = ctx.idle_room if count == ctx.total else ctx.local_room
    if ctx.own and needless_share(shared=not group.idle, left=left, part=part, idle_room=rooms.get(level, 0)):
        return True
    if group.idle or left <= 0:
        return False
    users = [(cache, alone) for cache, alone in ctx.caches if not cache.isdisjoint(group.cpus)]
    if len(users) != 1 or not users[0][1]:
        return False  # several already share it, or its one user packs: joining takes nothing it keeps
    return neighbour_needless(
        users=[users[0][0]], group=group.cpus, left=left, idle_room=ctx.local_room.get(level, 0)
    )


def _fit_key(
    group: _Group, vcpus: int, level: int, ctx: _Ctx, finest: int | None
) -> tuple[int, int, int, int, int, int]:
    """(needless share, finest groups spanned inside, cache rank, free units, partly used first, first
    core): lower fits better (module rule 2).

    The span inside comes before best fit: the group whose free units are the fewest that hold the guest
    may hold them only across two of its L2 clusters while another holds them in one (hybrid hosts: the 8
    E-cores in two L2 clusters fit 8 vCPUs exactly, 4 P-cores hold them in no shared L2 at all).
    """
    cache_rank = -group.size_kib if ctx.latency else 0
    first = group.views[0].core.index
    span = _span(group.views, vcpus, ctx, finest)
    return (int(_needless(group, vcpus, level, ctx)), span, cache_rank, group.cap, int(group.idle), first)


def _use(level: int, group: _Group, count: int, ctx: _Ctx) -> GroupUse:
    reason = ""
    needless = _needless(group, count, level, ctx)
    ctx.needless += needless
    if not group.idle:
        if not needless and group.cap == count:
            reason = "it fills the group's last free CPUs (packing: nobody else can join it)"
        elif needless:
            reason = "no group without a needless share could hold it"
        elif ctx.own:
            reason = "no idle group could hold it"
        else:
            reason = "the fullest group that holds it (--cache-fit pack: idle groups stay whole)"
    return GroupUse(
        level=level, key=group.key, cpus=group.cpus, idle=group.idle, whole=group.cap == count, reason=reason
    )


def _in_order(views: Sequence[CoreView]) -> list[CoreView]:
    # whole cores before half-used ones, the widest first, then by id: a core whose sibling is offline
    # (or an E-core beside P-cores) comes last, else an even guest takes it plus one thread of a 2-thread
    # core and leaves that core's other thread idle and unheld; siblings stay adjacent in guest order
    return sorted(views, key=lambda v: (not v.whole, -len(v.units), v.core.index))


def _select(
    views: list[CoreView], vcpus: int, levels: tuple[int, ...], ctx: _Ctx, *, top: bool
) -> list[CoreView]:
    if not levels:
        return _in_order(views)
    level, rest = levels[0], levels[1:]
    finest = rest[-1] if rest else None
    groups = _groups(views, level, ctx)
    if len(groups) == 1 and level in (NODE_LEVEL, KIND_LEVEL):
        return _select(views, vcpus, rest, ctx, top=top)
    if ctx.spread and is_cache_level(level) and len(groups) > 1:
        return _spread_over(groups, vcpus, level, ctx, top=top)
    fitting = [g for g in groups if g.cap >= vcpus]
    if fitting:
        best = min(fitting, key=lambda g: _fit_key(g, vcpus, level, ctx, finest))
        if top:
            ctx.quality = (1, *_fit_key(best, vcpus, level, ctx, finest)[:5])
        ctx.uses.append(_use(level, best, vcpus, ctx))
        return _select(best.views, vcpus, rest, ctx, top=False)
    # 3: fewest groups - the largest first (idle before used among equals) until the remainder fits one,
    # unless other groups, as few, span fewer groups of the finer level (``_fewest``)
    whole, last, remaining = _fewest(groups, vcpus, level, ctx, finest)
    chosen: list[CoreView] = []
    for group in whole:
        ctx.uses.append(_use(level, group, group.cap, ctx))
        chosen.extend(_in_order(group.views))
    ctx.uses.append(_use(level, last, remaining, ctx))
    chosen.extend(_select(last.views, remaining, rest, ctx, top=False))
    if top:
        ctx.quality = (len(whole) + 1, 0, sum(not g.idle for g in (*whole, last)), 0, 0, 0)
    return chosen


def _spread_over(groups: Sequence[_Group], vcpus: int, level: int, ctx: _Ctx, *, top: bool) -> list[CoreView]:
    """``--cache-fit spread``: a core from each group in turn (idle groups first, the roomiest first)
    until the guest has its units, so it sits behind as many caches as it has cores."""
    order = sorted(groups, key=lambda g: (not g.idle, -g.cap, g.views[0].core.index))
    queues = [_in_order(g.views) for g in order]
    taken: dict[int, int] = {}
    chosen: list[CoreView] = []
    count = 0
    # idle groups in turn until they run out, then busy ones: a busy group while an idle one has room
    # would be a needless share
    for tier in (True, False):
        depth = 0
        while count < vcpus and any(depth < len(q) for i, q in enumerate(queues) if order[i].idle is tier):
            for i, queue in enumerate(queues):
                if order[i].idle is tier and depth < len(queue) and count < vcpus:
                    chosen.append(queue[depth])
                    units = min(len(queue[depth].units), vcpus - count)
                    count += units
                    taken[i] = taken.get(i, 0) + units
            depth += 1
    for i, units in sorted(taken.items()):
        ctx.uses.append(_use(level, order[i], units, ctx))
    if top:
        ctx.quality = (len(taken), 0, sum(not order[i].idle for i in taken), 0, 0, 0)
    return chosen


_ALTERNATIVES = 256
"""Sets of whole groups ``_fewest`` compares at most (a level has a handful of groups per node)."""


def _fewest(
    groups: Sequence[_Group], vcpus: int, level: int, ctx: _Ctx, finest: int | None
) -> tuple[list[_Group], _Group, int]:
    """(groups taken whole, the group holding the remainder, the remainder): module rule 3.

    The largest groups first give the fewest groups at this level. Other sets of as many groups can leave
    a remainder that closes a hole exactly where the largest-first one would share a group needlessly (16
    vCPUs over L2 clusters of 4, 4, 4, 3, 2 free CPUs: 4 + 4 + 4 + 2 + 2, not 4 + 4 + 4 + 3 + 1), or span
    fewer groups of the finer level: on a hybrid host with 6 free P-CPUs (private L2s, one pool) and 7
    free E-cores in two L2 clusters, 8 vCPUs took the 7 E-cores whole (2 clusters) plus 1 P-CPU - 3 groups
    where the 6 P-CPUs plus 2 E-cores in one cluster span 2. So every set of that many groups taken whole
    is weighed (needless shares, finer groups spanned, then groups other guests use), the remainder going
    to its best fit (rule 2); ties keep the largest-first choice.
    """
    order = sorted(groups, key=lambda g: (-g.cap, not g.idle, g.views[0].core.index))
    greedy: list[_Group] = []
    remaining = vcpus
    while not any(g.cap >= remaining for g in order[len(greedy) :]):
        remaining -= order[len(greedy)].cap
        greedy.append(order[len(greedy)])

    def last_of(whole: Sequence[_Group]) -> tuple[_Group, int] | None:
        left = vcpus - sum(g.cap for g in whole)
        fits = [g for g in order if g.cap >= left and g not in whole]
        return (min(fits, key=lambda g: _fit_key(g, left, level, ctx, finest)), left) if fits else None

    first = last_of(greedy)
    assert first is not None  # the loop stopped where a group holds the remainder
    best = (greedy, *first)
    if comb(len(order), len(greedy)) > _ALTERNATIVES:
        return best

    def cost(whole: Sequence[_Group], last: _Group, left: int) -> tuple[int, int, int]:
        spans = sum(_span(g.views, g.cap, ctx, finest) for g in whole) + _span(last.views, left, ctx, finest)
        return int(_needless(last, left, level, ctx)), spans, sum(not g.idle for g in (*whole, last))

    best_cost = cost(*best)
    for combo in combinations(order, len(greedy)):
        tail = last_of(combo)
        if tail is not None and (c := cost(combo, *tail)) < best_cost:
            best, best_cost = (list(combo), *tail), c
    return best
