"""Pick a guest's CPUs inside one placement domain (a NUMA node, or the whole host with ``--numa off``).

Pure and deterministic, in the style of kubelet's ``cpu_assignment.go``: the free pool is seen through the
thread policy as *units* per physical core, then the cache hierarchy is walked top-down:

1. a core's units: ``prefer``/``require`` use every thread of a wholly free core (``prefer`` may fall back
   to the free threads of a core another guest half-uses, but only in a second pass when no whole-core
   solution exists); ``isolate`` uses one thread of a wholly free core and leaves its siblings empty;
2. at each grouping level (NUMA node when the domain is the whole host, then the core kind on hybrid
   hosts, then each cache level coarsest first: L3, then L2 - only levels that split a node into several
   groups of cores, so a private per-core L2 or an L3 that is the whole node adds nothing), if one group
   can hold the request, choose it by *best fit*:
   - first tier: idle groups (no other guest's CPU in them) and groups partly used by guests of the same
     size class (a *small* guest is at most half the group; only small guests share groups); among them
     the one that holds the guest in the fewest groups of the finest level below (as few cache groups as
     possible comes before fragmentation), then the one whose free count is the smallest that still
     holds the guest - so a hole left beside the reserved
     core or by another small guest is filled before a whole group is broken, and big groups stay whole
     for big guests (fragmentation); ties go to the partly used group, then the lowest core id;
     latency guests look at the largest cache first (V-Cache dies);
   - second tier: any other partly used group, best fit again - a big guest only joins another guest's
     group when no idle group can hold it;
   the choice is compared across nodes too (``core.numa``): the node whose best group fits best wins;
3. if no single group can hold it, the fewest groups: as many as the largest free groups first need
   (whole idle groups first among equals) until the remainder fits in one group, which is chosen by rule
   2 (best fit); among the sets of that many groups, the one spanning the fewest groups of the finer
   level, then sharing the fewest with other guests (ties: the largest first);
4. inside the last group, whole cores in id order, siblings kept together so the guest sees them as
   thread pairs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations
from math import comb

from vmtune.core.intent.model import ThreadPolicy
from vmtune.core.ledger.pool import Tenant
from vmtune.core.topology.model import Core, Host
from vmtune.cpuset import CpuSet

__all__ = [
    "BOOK_LEVEL",
    "DRAWER_LEVEL",
    "KIND_LEVEL",
    "NODE_LEVEL",
    "SOCKET_LEVEL",
    "CoreView",
    "DomainPick",
    "GroupUse",
    "core_views",
    "grouping_levels",
    "is_cache_level",
    "pick_in_domain",
]

NODE_LEVEL = -2
"""Pseudo cache level: group cores by NUMA node (used when the domain spans the whole host)."""
KIND_LEVEL = -1
"""Pseudo level: group cores by kind (``Core.kind``) on hybrid hosts, so one guest gets one kind of core.
Every pseudo level is negative so that every real cache level (L1 up) keeps its own number."""
DRAWER_LEVEL = -5
BOOK_LEVEL = -4
SOCKET_LEVEL = -3
"""Pseudo levels for hosts without cache data (s390 LPARs, some VMs): the socket, book and drawer stand in
for the caches they hold (an s390 chip's L3, a book's or drawer's L4), coarsest first."""
_CONTAINERS = (DRAWER_LEVEL, BOOK_LEVEL, SOCKET_LEVEL)
_PRIVATE = -1
"""Group key of the cores whose cache at this level is their own (or unknown)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CoreView:
    core: Core
    units: tuple[int, ...]
    """CPUs of this core the guest may use under the thread policy, in thread order."""
    whole: bool
    """Every online thread of the core is free."""


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
    tenants: Sequence[Tenant]
    latency: bool
    uses: list[GroupUse] = field(default_factory=list)
    quality: tuple[int, ...] | None = None
    sizes: dict[tuple[int, int], int] = field(default_factory=dict)
    """(level, key) -> cores of the whole group on the host, for the size class."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DomainPick:
    cpus: tuple[int, ...]
    """Chosen host CPUs in guest order (siblings adjacent)."""
    cores: tuple[Core, ...]
    groups: tuple[GroupUse, ...]
    quality: tuple[int, ...]
    """(groups spanned at the top grouping level, fit tier, finest groups spanned inside the chosen group,
    cache rank, free units of the chosen group, idle): lower is a better cache fit; ``core.numa`` compares
    it across nodes."""
    cpu_set: CpuSet = field(init=False, repr=False, compare=False)
    """``cpus`` as a set, built once: membership in a tuple of thousands of CPUs per vCPU is quadratic."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "cpu_set", CpuSet(self.cpus))


def core_views(
    host: Host, free: CpuSet, policy: ThreadPolicy, *, partial: bool, cores: Sequence[Core] | None = None
) -> list[CoreView]:
    out: list[CoreView] = []
    for core in host.cores if cores is None else cores:
        if not core.cpus:
            continue
        whole = core.cpus.issubset(free)
        units: tuple[int, ...]
        if whole:
            units = (core.cpus.first(),) if policy is ThreadPolicy.ISOLATE else tuple(core.cpus)
        elif partial and policy is ThreadPolicy.PREFER:
            units = tuple(core.cpus & free)
        else:
            units = ()
        if units:
            out.append(CoreView(core=core, units=units, whole=whole))
    return out


def is_cache_level(level: int) -> bool:
    """A real cache level, not a pseudo level (NUMA node, core kind, socket, book, drawer)."""
    return level > 0


def grouping_levels(host: Host, *, with_nodes: bool) -> tuple[int, ...]:
    """Levels that split some NUMA node into several groups of cores.

    Coarsest first. A private per-core L2 groups nothing; an L3 that covers the whole node (most Intel
    sockets) or spans two nodes (sub-NUMA clustering) is the node itself as far as a choice inside one node
    goes - the node choice (``core.numa``: most free room) decides there, not a best fit on the L3.
    """
    levels: list[int] = [NODE_LEVEL] if with_nodes else []
    if len({c.kind for c in host.cores if c.cpus}) > 1:
        levels.append(KIND_LEVEL)
    # with no cache shared by several cores known, the socket, book and drawer are the only sign of what
    # cores share (s390 LPARs report no caches, or private L2s only)
    shared_caches = any(len(g.cpus) > len(host.siblings(g.cpus.first())) for g in host.caches)
    containers = () if shared_caches else _CONTAINERS
    for level in (*containers, *reversed(host.cache_levels)):
        per_group: dict[int, int] = {}
        per_node: dict[int, set[int]] = {}
        for core in host.cores:
            key = core.caches.get(level) if is_cache_level(level) else _container_key(core, level)
            if key is not None and core.cpus:
                per_group[key] = per_group.get(key, 0) + 1
                per_node.setdefault(core.node, set()).add(key)
        shared = {k for k, n in per_group.items() if n > 1}
        if any(len(keys & shared) >= 1 and len(keys) > 1 for keys in per_node.values()):
            levels.append(level)
    return tuple(levels)


def _container_key(core: Core, level: int) -> int | None:
    raw = {SOCKET_LEVEL: core.socket, BOOK_LEVEL: core.book, DRAWER_LEVEL: core.drawer}[level]
    return None if raw < 0 else raw


def _key(core: Core, level: int) -> int:
    if level == KIND_LEVEL:
        return -1 if core.kind is None else core.kind
    if level in _CONTAINERS:
        raw = _container_key(core, level)
    else:
        raw = core.node if level == NODE_LEVEL else core.caches.get(level)
    # a core without cache data is its own group (then pooled with the private ones by _groups)
    return -2 - core.index if raw is None else raw


def _capacity(views: Sequence[CoreView]) -> int:
    return sum(len(v.units) for v in views)


def pick_in_domain(
    *,
    host: Host,
    views: Sequence[CoreView],
    vcpus: int,
    policy: ThreadPolicy,
    levels: Sequence[int],
    tenants: Sequence[Tenant],
    latency: bool,
) -> DomainPick | None:
    """Choose ``vcpus`` CPUs among ``views``; None when they don't hold that many."""
    if _capacity(views) < vcpus:
        return None
    ctx = _Ctx(host=host, tenants=tenants, latency=latency)
    chosen = _select(list(views), vcpus, tuple(levels), ctx, policy, top=True)
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
    return DomainPick(
        cpus=tuple(cpu for _, units in taken for cpu in units),
        cores=tuple(core for core, _ in taken),
        groups=tuple(ctx.uses),
        quality=ctx.quality or (0, 0, 0, 0, 0, 0),
    )


def _full_units(views: Sequence[CoreView], policy: ThreadPolicy, cores: int) -> int:
    """Units of the whole group if it were all free (``cores`` of it on the host): its size class.

    The group's size, not its free part: a group with one small guest in it is still a big group.
    """
    per_core = 1 if policy is ThreadPolicy.ISOLATE else max(len(v.core.cpus) for v in views)
    return max(cores, len(views)) * per_core


@dataclass(frozen=True, slots=True, kw_only=True)
class _Group:
    key: int
    views: list[CoreView]
    cpus: CpuSet
    cap: int
    full: int
    idle: bool
    small_only: bool
    """Partly used, and only by guests no bigger than half the group."""
    size_kib: int


def _shares(level: int) -> bool:
    """Groups of this level are cores sharing a cache (a real level, or the socket, book, drawer)."""
    return is_cache_level(level) or level in _CONTAINERS


def _group_cores(ctx: _Ctx, level: int, key: int) -> int:
    """Physical cores of cache group ``key`` on the host (1 for a core without cache data)."""
    size = ctx.sizes.get((level, key))
    if size is None:
        size = 1
        if level in _CONTAINERS:
            size = max(1, sum(1 for c in ctx.host.cores if c.cpus and _key(c, level) == key))
        elif 0 <= key < len(ctx.host.caches):
            size = len({cpu.core for c in ctx.host.caches[key].cpus if (cpu := ctx.host.cpu(c)) is not None})
        ctx.sizes[level, key] = size
    return size


def _groups(views: Sequence[CoreView], level: int, ctx: _Ctx, policy: ThreadPolicy) -> list[_Group]:
    by_key: dict[int, list[CoreView]] = {}
    for view in views:
        key = _key(view.core, level)
        if _shares(level) and _group_cores(ctx, level, key) <= 1:
            # a private cache (Intel P-core L2) shares nothing: such cores are one pool at this level
            key = _PRIVATE
        by_key.setdefault(key, []).append(view)
    out: list[_Group] = []
    for key, members in by_key.items():
        if level == NODE_LEVEL:
            node = ctx.host.node(key)
            gcpus = node.cpus if node else CpuSet().union(*(v.core.cpus for v in members))
            size_kib = 0
        elif level == KIND_LEVEL or (level in _CONTAINERS and key != _PRIVATE):
            gcpus = CpuSet().union(*(c.cpus for c in ctx.host.cores if _key(c, level) == key))
            size_kib = key if level == KIND_LEVEL else 0  # latency guests: the bigger kind first
        elif key >= 0 and key < len(ctx.host.caches):
            cache = ctx.host.caches[key]
            gcpus = cache.cpus
            size_kib = cache.size_kib or 0
        else:
            gcpus = CpuSet().union(*(v.core.cpus for v in members))
            size_kib = 0
        full = _full_units(members, policy, _group_cores(ctx, level, key) if _shares(level) else 0)
        occupants = [t for t in ctx.tenants if not t.cpus.isdisjoint(gcpus)]
        small_only = bool(occupants) and all(len(t.cpus & gcpus) * 2 <= len(gcpus) for t in occupants)
        out.append(
            _Group(
                key=key,
                views=members,
                cpus=gcpus,
                cap=_capacity(members),
                full=full,
                idle=not occupants,
                small_only=small_only,
                size_kib=size_kib,
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
        key = _key(view.core, finest)
        if _shares(finest) and _group_cores(ctx, finest, key) <= 1:
            key = _PRIVATE
        caps[key] = caps.get(key, 0) + len(view.units)
    need = spanned = 0
    for cap in sorted(caps.values(), reverse=True):
        if need >= vcpus:
            break
        need += cap
        spanned += 1
    return spanned


def _fit_key(group: _Group, vcpus: int, ctx: _Ctx, finest: int | None) -> tuple[int, int, int, int, int, int]:
    """(tier, finest groups spanned inside, cache rank, free units, partly used first, first core): lower
    fits better (module rule 2).

    The span inside comes before best fit: the group whose free units are the fewest that hold the guest
    may hold them only across two of its L2 clusters while another holds them in one (hybrid hosts: the 8
    E-cores in two L2 clusters fit 8 vCPUs exactly, 4 P-cores hold them in no shared L2 at all).
    """
    cache_rank = -group.size_kib if ctx.latency else 0
    first = group.views[0].core.index
    small = vcpus * 2 <= group.full
    same_class = group.idle or (small and group.small_only)
    span = _span(group.views, vcpus, ctx, finest)
    return (0 if same_class else 1, span, cache_rank, group.cap, int(group.idle), first)


def _use(level: int, group: _Group, count: int, small: bool) -> GroupUse:
    reason = ""
    if not group.idle:
        reason = (
            "the best fit among idle groups and groups of small guests"
            if small and group.small_only
            else "no idle group could hold it"
        )
    return GroupUse(
        level=level, key=group.key, cpus=group.cpus, idle=group.idle, whole=group.cap == count, reason=reason
    )


def _select(
    views: list[CoreView], vcpus: int, levels: tuple[int, ...], ctx: _Ctx, policy: ThreadPolicy, *, top: bool
) -> list[CoreView]:
    if not levels:
        # whole cores before half-used ones, then by id: siblings stay adjacent in guest order
        return sorted(views, key=lambda v: (not v.whole, v.core.index))
    level, rest = levels[0], levels[1:]
    finest = rest[-1] if rest else None
    groups = _groups(views, level, ctx, policy)
    if len(groups) == 1 and level in (NODE_LEVEL, KIND_LEVEL):
        return _select(views, vcpus, rest, ctx, policy, top=top)
    fitting = [g for g in groups if g.cap >= vcpus]
    if fitting:
        best = min(fitting, key=lambda g: _fit_key(g, vcpus, ctx, finest))
        if top:
            ctx.quality = (1, *_fit_key(best, vcpus, ctx, finest)[:5])
        ctx.uses.append(_use(level, best, vcpus, vcpus * 2 <= best.full))
        return _select(best.views, vcpus, rest, ctx, policy, top=False)
    # 3: fewest groups - the largest first (idle before used among equals) until the remainder fits one,
    # unless other groups, as few, span fewer groups of the finer level (``_fewest``)
    whole, last, remaining = _fewest(groups, vcpus, ctx, finest)
    chosen: list[CoreView] = []
    for group in whole:
        ctx.uses.append(_use(level, group, group.cap, False))
        chosen.extend(sorted(group.views, key=lambda v: (not v.whole, v.core.index)))
    ctx.uses.append(_use(level, last, remaining, remaining * 2 <= last.full))
    chosen.extend(_select(last.views, remaining, rest, ctx, policy, top=False))
    if top:
        ctx.quality = (len(whole) + 1, sum(not g.idle for g in (*whole, last)), 0, 0, 0, 0)
    return chosen


_ALTERNATIVES = 256
"""Sets of whole groups ``_fewest`` compares at most (a level has a handful of groups per node)."""


def _fewest(
    groups: Sequence[_Group], vcpus: int, ctx: _Ctx, finest: int | None
) -> tuple[list[_Group], _Group, int]:
    """(groups taken whole, the group holding the remainder, the remainder): module rule 3.

    The largest groups first give the fewest groups at this level. Other sets of as many groups can span
    fewer groups of the finer level: on a hybrid host with 6 free P-CPUs (private L2s, one pool) and 7
    free E-cores in two L2 clusters, 8 vCPUs took the 7 E-cores whole (2 clusters) plus 1 P-CPU - 3 groups
    where the 6 P-CPUs plus 2 E-cores in one cluster span 2. So every set of that many groups taken whole
    is weighed (finer groups spanned, then groups other guests use), the remainder going to its best fit
    (rule 2); ties keep the largest-first choice.
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
        return (min(fits, key=lambda g: _fit_key(g, left, ctx, finest)), left) if fits else None

    first = last_of(greedy)
    assert first is not None  # the loop stopped where a group holds the remainder
    best = (greedy, *first)
    if finest is None or comb(len(order), len(greedy)) > _ALTERNATIVES:
        return best

    def cost(whole: Sequence[_Group], last: _Group, left: int) -> tuple[int, int]:
        spans = sum(_span(g.views, g.cap, ctx, finest) for g in whole) + _span(last.views, left, ctx, finest)
        return spans, sum(not g.idle for g in (*whole, last))

    best_cost = cost(*best)
    for combo in combinations(order, len(greedy)):
        tail = last_of(combo)
        if tail is not None and (c := cost(combo, *tail)) < best_cost:
            best, best_cost = (list(combo), *tail), c
    return best
