"""When sharing a cache group with another guest is needless: the one rule the planner and VT105 share.

A *cache group* here is a group of a cache level that splits some NUMA node into several groups of cores
(an EPYC CCX/CCD L3, an Arm or E-core L2 cluster): the levels ``split_levels`` finds. An L3 that is the
whole node (most Intel sockets) or spans two nodes (sub-NUMA clustering) is the node itself as far as
sharing goes: which node a guest shares is the NUMA fit's business (``--numa-fit``), not the cache fit's.
A cache private to one core groups nothing (SMT sharing is VT103's business).

A guest's *use* of a group is the CPUs it holds for itself there (``Holding.own``): its vCPU pins and
cpuset, and emulator/iothread pins off the housekeeping CPUs. Pins on housekeeping CPUs are shared with
the host by design and never make a group busy; a ``--cpu-policy shared`` guest floats and uses none.

Whose shares the rule judges (``keeps_alone``): a guest that asked for cache groups of its own
(``--cache-fit own``, the latency and realtime profiles' default) and a guest vmtune never planned (no
intent: nobody chose to pack it, so the catalog's plain reading holds). A ``--cache-fit pack`` guest
(the default) shares a group on purpose: it fills the fullest group that holds it, as kubelet's
uncore-cache alignment does, so idle groups stay whole for wide guests. The strict rule for every guest
was measured worse than kubelet on groups: on a 12-CCD host, 12 small guests each open a CCD and every
later 8-core guest spans two, where packing keeps most CCDs whole - no ordering of the choice avoids
that while every share is a finding. A pack guest still never joins a group a guest that keeps alone
has to itself while an idle group could take it (``neighbour_needless``).

The rule (``needless_share``): a guest's part of a group other guests use is a needless share when the
group still has free CPUs after it (the guest did not close the hole exactly) and an idle group of that
level - no guest's use in it - has at least as many free CPUs as the guest's part. Closing a hole exactly
is packing: the group is then full and nobody else can join it, so that is never a finding; sharing a
group because no idle group can hold the part is the best the host can do. The idle groups weighed are
those of the guest's own NUMA node(s): which node a guest lives on is the NUMA fit's business, as it is
for an L3 that is the whole node. Weighing every node's idle groups made each small guest that could not
close a hole exactly break a group on a fresh node while the nodes in use had only busy ones, until every
group of the host was open: no node was left whole for a wide guest, and the holes left behind made
later guests span more groups than kubelet's packed policy does. ``--numa-fit spread`` still puts a
guest on the emptiest node, where idle groups are.

The rule judges every such guest, however late its neighbours came: so the planner also keeps a newcomer
from joining a group one other guest has to itself when that would make the other's part a needless
share (``neighbour_needless``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

from vmtune.core.intent.model import CacheFit, Intent, ThreadPolicy
from vmtune.core.intent.profiles import cache_fit_of, thread_policy_of
from vmtune.core.topology.model import Host
from vmtune.cpuset import CpuSet

__all__ = [
    "CacheGroupUse",
    "keeps_alone",
    "keeps_cores_whole",
    "needless_share",
    "needless_shares",
    "neighbour_needless",
    "sharing_groups",
    "split_levels",
]

K = TypeVar("K")


def split_levels(host: Host) -> tuple[int, ...]:
    """Cache levels, coarsest first, whose shared groups split some NUMA node into several groups."""
    levels: list[int] = []
    for level in reversed(host.cache_levels):
        per_group: dict[int, int] = {}
        per_node: dict[int, set[int]] = {}
        for core in host.cores:
            key = core.caches.get(level)
            if key is not None and core.cpus:
                per_group[key] = per_group.get(key, 0) + 1
                per_node.setdefault(core.node, set()).add(key)
        shared = {k for k, n in per_group.items() if n > 1}
        if any(len(keys & shared) >= 1 and len(keys) > 1 for keys in per_node.values()):
            levels.append(level)
    return tuple(levels)


def sharing_groups(host: Host) -> list[tuple[int, CpuSet]]:
    """(level, CPUs) of every cache group sharing can happen in: groups of ``split_levels`` of more than
    one core."""
    out: list[tuple[int, CpuSet]] = []
    for level in split_levels(host):
        for group in host.groups(level):
            cores = {c.index for cpu in group.cpus if (c := host.core_of(cpu)) is not None}
            if len(cores) > 1:
                out.append((level, group.cpus))
    return out


def keeps_cores_whole(intent: Intent | None) -> bool:
    """The guest never shares a physical core with another guest (VT103 judges its cores): thread policy
    ``require`` or ``isolate`` (the latency profiles' default), or a guest vmtune never planned. A
    ``prefer`` guest (the default) takes the free threads of a core another ``prefer`` guest half uses
    when no whole core is left, as its plan note says; it never takes half of such a guest's core."""
    return intent is None or thread_policy_of(intent) is not ThreadPolicy.PREFER


def keeps_alone(intent: Intent | None) -> bool:
    """The guest's shares are judged by the rule: it asked for groups of its own, or vmtune never planned
    it (module doc)."""
    return intent is None or cache_fit_of(intent) is CacheFit.OWN


def needless_share(*, shared: bool, left: int, part: int, idle_room: int) -> bool:
    """A guest's ``part`` (CPUs) of a group is a needless share: other guests use the group (``shared``),
    ``left`` CPUs of it stay free after the guest, and an idle group of the level has ``idle_room`` >=
    ``part`` free CPUs."""
    return shared and left > 0 and part <= idle_room


def neighbour_needless(*, users: Sequence[CpuSet], group: CpuSet, left: int, idle_room: int) -> bool:
    """Joining ``group``, which ``users`` (each another guest's use of cache groups) touch, and leaving
    ``left`` CPUs of it free, makes a needless share of the one guest that had it to itself: the rule
    judges every guest, so a newcomer must not create one for its neighbour. Its part weighs against
    ``idle_room``, the idle groups of the group's own node (as far as the caller knows them). Several
    users already share it: joining takes nothing from any of them."""
    if len(users) != 1 or left <= 0:
        return False
    part = users[0] & group
    return needless_share(shared=True, left=left, part=len(part), idle_room=idle_room)


@dataclass(frozen=True, slots=True, kw_only=True)
class CacheGroupUse:
    """A needless share found by ``needless_shares``."""

    level: int
    group: CpuSet
    part: CpuSet
    """The guest's CPUs in the group."""
    others: tuple[int, ...]
    """Indices (into ``uses``) of the other guests using the group."""
    idle_room: int


def needless_shares(
    host: Host, uses: Sequence[tuple[K, CpuSet]], reserved: CpuSet, target: K
) -> Iterator[CacheGroupUse]:
    """The needless shares of ``target`` among ``uses`` ((guest, CPUs it uses), every guest on the host);
    ``reserved`` CPUs are no guest's and never free for one."""
    mine = next((cpus for key, cpus in uses if key is target), CpuSet())
    if not mine:
        return
    used = CpuSet().union(*(cpus for _, cpus in uses))
    groups = sharing_groups(host)
    nodes = host.nodes_of(mine)
    reach = CpuSet().union(*(n.cpus for n in host.nodes if n.id in nodes))
    for level in split_levels(host):
        of_level = [grp for lvl, grp in groups if lvl == level]
        # only idle groups of the guest's own nodes: another node is the NUMA fit's business
        idle_room = max(
            (len(grp - reserved) for grp in of_level if grp.isdisjoint(used) and grp.issubset(reach)),
            default=0,
        )
        for grp in of_level:
            part = mine & grp
            if not part:
                continue
            others = tuple(
                i for i, (key, cpus) in enumerate(uses) if key is not target and not cpus.isdisjoint(grp)
            )
            left = len(grp - reserved - used)
            if needless_share(shared=bool(others), left=left, part=len(part), idle_room=idle_room):
                yield CacheGroupUse(level=level, group=grp, part=part, others=others, idle_room=idle_room)
