"""The free pool as a guest sees it: *units* per physical core under the thread policy, and the levels
cores are grouped by (NUMA node, core kind, the cache levels that split a node).

Used by ``allocator`` (the choice inside a domain) and ``numa`` (the choice of nodes): ``prefer`` and
``require`` use every thread of a wholly free core (``prefer`` may fall back to the free threads of a core
another guest half-uses, in a second pass); ``isolate`` uses one thread of a wholly free core.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from vmtune.core.intent.model import ThreadPolicy
from vmtune.core.placement.sharing import split_levels
from vmtune.core.topology.model import Core, Host
from vmtune.cpuset import CpuSet

__all__ = [
    "BOOK_LEVEL",
    "CONTAINER_LEVELS",
    "DRAWER_LEVEL",
    "KIND_LEVEL",
    "NODE_LEVEL",
    "PRIVATE",
    "SOCKET_LEVEL",
    "CoreView",
    "capacity",
    "core_views",
    "cores_in",
    "group_key",
    "grouping_levels",
    "idle_rooms",
    "is_cache_level",
    "shares_cache",
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
CONTAINER_LEVELS = (DRAWER_LEVEL, BOOK_LEVEL, SOCKET_LEVEL)
PRIVATE = -1
"""Group key of the cores whose cache at this level is their own (or unknown)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CoreView:
    core: Core
    units: tuple[int, ...]
    """CPUs of this core the guest may use under the thread policy, in thread order."""
    whole: bool
    """Every online thread of the core is free."""


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


def shares_cache(level: int) -> bool:
    """Groups of this level are cores sharing a cache (a real level, or the socket, book, drawer)."""
    return is_cache_level(level) or level in CONTAINER_LEVELS


def grouping_levels(host: Host, *, with_nodes: bool) -> tuple[int, ...]:
    """Levels that split some NUMA node into several groups of cores (``sharing.split_levels``).

    Coarsest first. A private per-core L2 groups nothing; an L3 that covers the whole node (most Intel
    sockets) or spans two nodes (sub-NUMA clustering) is the node itself as far as a choice inside one node
    goes - the node choice (``core.numa``: the least room that holds the guest) decides there.
    """
    levels: list[int] = [NODE_LEVEL] if with_nodes else []
    if len({c.kind for c in host.cores if c.cpus}) > 1:
        levels.append(KIND_LEVEL)
    # with no cache shared by several cores known, the socket, book and drawer are the only sign of what
    # cores share (s390 LPARs report no caches, or private L2s only)
    if not any(len(g.cpus) > len(host.siblings(g.cpus.first())) for g in host.caches):
        levels.extend(_container_levels(host))
    levels.extend(split_levels(host))
    return tuple(levels)


def _container_levels(host: Host) -> list[int]:
    """The socket, book and drawer levels that split some NUMA node into several groups of cores."""
    out: list[int] = []
    for level in CONTAINER_LEVELS:
        per_group: dict[int, int] = {}
        per_node: dict[int, set[int]] = {}
        for core in host.cores:
            key = _container_key(core, level)
            if key is not None and core.cpus:
                per_group[key] = per_group.get(key, 0) + 1
                per_node.setdefault(core.node, set()).add(key)
        shared = {k for k, n in per_group.items() if n > 1}
        if any(keys & shared and len(keys) > 1 for keys in per_node.values()):
            out.append(level)
    return out


def _container_key(core: Core, level: int) -> int | None:
    raw = {SOCKET_LEVEL: core.socket, BOOK_LEVEL: core.book, DRAWER_LEVEL: core.drawer}[level]
    return None if raw < 0 else raw


def idle_rooms(host: Host, views: Sequence[CoreView], levels: Sequence[int], used: CpuSet) -> dict[int, int]:
    """Level -> the most free CPUs one idle group of it has among ``views`` (the guest's node or nodes):
    what ``sharing.needless_share`` weighs a guest's part of a busy group against."""
    out: dict[int, int] = {}
    sizes: dict[tuple[int, int], int] = {}
    for level in levels:
        if not is_cache_level(level):
            continue
        room: dict[int, int] = {}
        for view in views:
            key = view.core.caches.get(level)
            if key is None:
                continue
            if (level, key) not in sizes:
                sizes[level, key] = cores_in(host, key)
            if sizes[level, key] > 1:
                room[key] = room.get(key, 0) + (len(view.core.cpus) if view.whole else len(view.units))
        idle = [r for key, r in room.items() if host.caches[key].cpus.isdisjoint(used)]
        out[level] = max(idle, default=0)
    return out


def cores_in(host: Host, key: int) -> int:
    """Physical cores of cache group ``key`` on the host."""
    return len({cpu.core for c in host.caches[key].cpus if (cpu := host.cpu(c)) is not None})


def group_key(core: Core, level: int) -> int:
    if level == KIND_LEVEL:
        return -1 if core.kind is None else core.kind
    if level in CONTAINER_LEVELS:
        raw = _container_key(core, level)
    else:
        raw = core.node if level == NODE_LEVEL else core.caches.get(level)
    # a core without cache data is its own group (then pooled with the private ones by ``allocator``)
    return -2 - core.index if raw is None else raw


def capacity(views: Sequence[CoreView]) -> int:
    return sum(len(v.units) for v in views)
