"""The default reserve: the CPUs vmtune keeps for host housekeeping when ``--reserve`` is not given.

The kernel's kthreads and IRQs and the emulator threads of ``--emulator share`` guests need CPUs that no
guest has dedicated. Which CPUs matters as much as how many: a reserved core makes its cache group one
core short, and the guests sized to that group then straddle two groups (on a 2-socket Phytium S2500 the
first core of each node cut 16 of the 32 four-core L2 clusters). So, the first rule that applies:

1. **Hybrid host** (``Host.hybrid``): one cluster of little cores per package - the little cores sharing
   the finest cache that holds little cores only (an Intel E-core cluster's L2), or the first little core
   where each has its own. The scheduler's capacity-aware placement and Intel's Thread Director send
   background work to the little cores anyway; one cluster and not every little core, so guests asking
   for ``--core-kind little`` keep the others.
2. **L3 sizes differ inside a package** (AMD X3D V-Cache parts): the first core of the die with the
   smaller L3, so the large-L3 die stays whole for the guests that want it. A whole die would be half of
   such a host.
3. **A cache shared by several cores splits a node** (Phytium L2 clusters of 4, EPYC Rome CCXs of 4): one
   whole group of the finest such level per node, or per socket when a group is too large a share of a
   node. A group qualifies when it is at most ``MAX_CORES`` cores and at most ``MAX_SHARE`` of its node's
   (socket's) cores: housekeeping keeps a few cores busy, and a whole 8-core CCD per socket (16 CPUs) or
   a 4-core cluster per 8-core node would be more of the host than it needs. The smallest group is taken
   (one that offline CPUs already cut, a lone core, first), then the lowest CPU. Without any shared cache
   data (s390), the sockets of a node are those groups (``core.placement.allocator`` groups by them too).
   The price of a per-socket reserve: ``--emulator share`` threads of a guest on another node of the
   socket run on the nearest node's housekeeping CPUs (the plan says so); ``--emulator isolate`` keeps
   them on the guest's node.
4. Otherwise (nothing shared below the node, as on most Intel sockets, or every shared group too big):
   the first core of each NUMA node, with all its threads; a node that holds CPUs of several sockets
   (CPUs the firmware put in no node) gets one per socket, so housekeeping never crosses sockets, unless
   that would take half the node's cores or more (POWER7's package per core).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from vmtune.core.topology.model import KIND_LITTLE, Core, Host
from vmtune.cpuset import CpuSet

__all__ = ["MAX_CORES", "MAX_SHARE", "DefaultReserve", "default_reserve_of"]

MAX_CORES = 4
"""The most cores a cache group reserved whole may have."""
MAX_SHARE = 1 / 8
"""The largest share of its node's (or socket's) cores a cache group reserved whole may be."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DefaultReserve:
    cpus: CpuSet
    why: str
    """Which rule chose them, in the words of the plan's note."""


def default_reserve_of(host: Host) -> DefaultReserve:
    """The default reserve of ``host`` and why (module rules 1-4)."""
    cores = [c for c in host.cores if c.cpus]
    for rule in (_little_cluster, _smaller_l3, _whole_group):
        found = rule(host, cores)
        if found is not None:
            return found
    firsts = _first_cores(cores)
    several = len(firsts) > len({c.node for c in cores})
    why = "the first core of each NUMA node" + (" (of each socket in it)" if several else "")
    return DefaultReserve(cpus=_union(firsts), why=why)


def _union(cores: Sequence[Core]) -> CpuSet:
    return CpuSet().union(*(c.cpus for c in cores))


def _first_cores(cores: Sequence[Core]) -> list[Core]:
    """Rule 4: the first core of each (node, socket); of each node alone where one per socket would take
    half its cores or more (POWER7 reports a package per core: a core per socket would be every core)."""
    out: list[Core] = []
    for node in _by(cores, lambda c: c.node):
        per_socket = [group[0] for group in _by(node, lambda c: c.socket)]
        out.extend(per_socket if 2 * len(per_socket) < len(node) or len(per_socket) == 1 else node[:1])
    return out


def _by(cores: Sequence[Core], key: Callable[[Core], object]) -> list[list[Core]]:
    """Cores grouped by ``key``, groups in order of their first core."""
    out: dict[object, list[Core]] = {}
    for core in cores:
        out.setdefault(key(core), []).append(core)
    return list(out.values())


def _smallest(groups: Sequence[Sequence[Core]]) -> Sequence[Core]:
    return min(groups, key=lambda g: (len(g), g[0].cpus.first()))


def _little_cluster(host: Host, cores: Sequence[Core]) -> DefaultReserve | None:
    """Rule 1: a cluster of little cores per package (its first little core where none share a cache)."""
    if not host.hybrid:
        return None
    out = CpuSet()
    whole = True
    for package in _by(cores, lambda c: c.socket):
        little = [c for c in package if c.kind == KIND_LITTLE]
        if not little:
            continue  # big cores only (phone SoCs report a package per core type): nothing to spare
        cluster: Sequence[Core] | None = None
        for level in host.cache_levels:  # finest first
            key = _cache_key(level)
            shared = [g for g in _by(little, key) if len(g) > 1 and key(g[0]) is not None]
            pure = [g for g in shared if all(c.kind == KIND_LITTLE for c in _cache_cores(host, g[0], level))]
            if pure:
                cluster = _smallest(pure)
                break
        whole = whole and cluster is not None
        out = out | _union(cluster or little[:1])
    what = "one cluster of little cores" if whole else "the first little core"
    return DefaultReserve(cpus=out, why=f"{what} per package, so the big cores stay whole for guests")


def _cache_cores(host: Host, core: Core, level: int) -> list[Core]:
    group = host.cache_group(core, level)
    if group is None:
        return [core]
    return [c for c in host.cores if c.cpus and not c.cpus.isdisjoint(group.cpus)]


def _smaller_l3(host: Host, cores: Sequence[Core]) -> DefaultReserve | None:
    """Rule 2: where L3 sizes differ inside a package, the first core of its smallest L3."""
    out = CpuSet()
    differ = False
    for package in _by(cores, lambda c: c.socket):
        dies = _by(package, lambda c: c.caches.get(3, -1))
        sizes = [_l3_kib(host, d[0]) for d in dies]
        if len(set(sizes)) < 2 or None in sizes:
            out = out | package[0].cpus
            continue
        differ = True
        small = min(dies, key=lambda d: (_l3_kib(host, d[0]) or 0, d[0].index))
        out = out | small[0].cpus
    if not differ:
        return None
    return DefaultReserve(
        cpus=out, why="the first core of the smaller-L3 die, so the larger L3 stays whole for guests"
    )


def _l3_kib(host: Host, core: Core) -> int | None:
    group = host.cache_group(core, 3)
    return None if group is None else group.size_kib


def _whole_group(host: Host, cores: Sequence[Core]) -> DefaultReserve | None:
    """Rule 3: one whole group of the finest level that splits a node, per node or else per socket."""
    found = _splitting_level(host, cores)
    if found is None:
        return None
    what, key = found
    groups = [g for g in _by(cores, key) if key(g[0]) is not None]
    scopes: list[tuple[str, Callable[[Core], int]]] = [("NUMA node", lambda c: c.node)]
    if what.startswith("L"):
        scopes.append(("socket", lambda c: c.socket))
    for scope, of in scopes:
        picked: list[Sequence[Core]] = []
        for members in _by(cores, of):
            inside = [g for g in groups if of(g[0]) == of(members[0]) and all(of(c) == of(g[0]) for c in g)]
            if not inside:
                break
            small = _smallest(inside)
            if len(small) > MAX_CORES or len(small) > MAX_SHARE * len(members):
                break
            picked.append(small)
        else:
            sizes = sorted({len(g) for g in picked})
            size = "-".join(str(n) for n in sizes[:: max(1, len(sizes) - 1)]) + (
                " core" if sizes == [1] else " cores"
            )
            return DefaultReserve(
                cpus=_union([c for g in picked for c in g]),
                why=f"one whole {what} per {scope} ({size}), so no other {what} is cut",
            )
    return None


def _cache_key(level: int) -> Callable[[Core], object]:
    """A core's group of ``level`` (None: the source says nothing of it)."""

    def key(core: Core) -> object:
        return core.caches.get(level)

    return key


def _splitting_level(host: Host, cores: Sequence[Core]) -> tuple[str, Callable[[Core], object]] | None:
    """(name, group key) of the finest level whose groups of several cores split some node: a cache level,
    or without any shared cache the socket, then the book, then the drawer."""
    candidates: list[tuple[str, Callable[[Core], object]]] = [
        (f"L{level} group", _cache_key(level)) for level in host.cache_levels
    ]
    if not any(len(g.cpus) > len(host.siblings(g.cpus.first())) for g in host.caches):
        candidates += [
            ("socket", lambda c: c.socket),
            ("book", lambda c: c.book if c.book >= 0 else None),
            ("drawer", lambda c: c.drawer if c.drawer >= 0 else None),
        ]
    for name, key in candidates:
        for node in _by(cores, lambda c: c.node):
            groups = _by(node, key)
            if len(groups) > 1 and any(len(g) > 1 and key(g[0]) is not None for g in groups):
                return name, key
    return None
