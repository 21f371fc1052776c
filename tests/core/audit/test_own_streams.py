"""vmtune's own plans never trigger a rule it plans by: streams of guests planned one after another (each
next to the earlier ones, as ``vmtune plan`` does in a batch), then VT103, VT105 and VT109 run over all of
them. VT105 judges every guest that keeps its cache groups alone (``--cache-fit own``), so the planner
must weigh what a newcomer does to such neighbours too."""

from __future__ import annotations

import dataclasses
import random

import pytest
from lxml import etree

from hosts import host_named
from rulehosts import make_host
from vmtune.core.audit.engine import run_rules
from vmtune.core.guest import GuestSpec
from vmtune.core.intent.model import CacheFit, Intent, ThreadPolicy
from vmtune.core.ledger.pool import Tenant
from vmtune.core.placement.allocator import core_views, grouping_levels, pick_in_domain
from vmtune.core.placement.sharing import needless_shares
from vmtune.core.planner import plan_guest
from vmtune.core.topology.model import Host
from vmtune.cpuset import CpuSet
from vmtune.errors import InfeasibleError
from vmtune.xmlmap.apply import apply_plan
from vmtune.xmlmap.guest import read_guest

RULES = frozenset({"VT103", "VT105", "VT109"})
# the sizes of a bench stream on huge-960 up to the first 62-vCPU guest that had to straddle two nodes
# whose every 10-core L3 held one small guest: its split left 2 CPUs free in a 4-vCPU guest's L3
HUGE_STREAM = [4, 12, 16, 2, 4, 16, 16, 2, 4, 8, 4, 6, 8, 12, 2, 4, 2, 2, 4, 2, 2, 16, 8, 4, 2, 2, 4, 62,
               2, 2, 12, 12, 2, 8, 12, 2, 16, 4, 12, 4, 2, 12, 2, 8, 2, 2, 62, 2, 8, 4, 12, 62]  # fmt: skip


def _plan_stream(host: Host, sizes: list[int], intent: Intent) -> list[GuestSpec]:
    placed: list[GuestSpec] = []
    for i, vcpus in enumerate(sizes):
        doc = etree.ElementTree(
            etree.fromstring(
                f"<domain type='kvm'><name>g{i}</name><memory unit='KiB'>{vcpus * 131072}</memory>"
                f"<vcpu>{vcpus}</vcpu><os><type arch='x86_64'>hvm</type></os></domain>"
            )
        )
        try:
            plan = plan_guest(
                host=host, guest=read_guest(doc, source=f"g{i}.xml"), tenants=placed, intent=intent
            )
        except InfeasibleError:
            continue
        placed.append(read_guest(apply_plan(doc, plan), source=f"g{i}.xml"))
    return placed


@pytest.mark.parametrize(
    ("host_name", "sizes", "intent"),
    [
        ("huge-960", HUGE_STREAM, Intent(thread_policy=ThreadPolicy.REQUIRE)),
        ("huge-960", HUGE_STREAM, Intent()),
        ("huge-960", HUGE_STREAM, Intent(thread_policy=ThreadPolicy.REQUIRE, cache_fit=CacheFit.OWN)),
        ("huge-960", HUGE_STREAM, Intent(cache_fit=CacheFit.OWN)),
    ],
)
def test_a_stream_of_own_plans_is_clean(host_name: str, sizes: list[int], intent: Intent) -> None:
    host = host_named(host_name)
    placed = _plan_stream(host, sizes, intent)
    assert len(placed) == len(sizes)  # the host is half full: every guest fits
    assert run_rules(host, placed, select=RULES) == ()


def test_a_newcomer_does_not_turn_its_neighbours_group_into_a_needless_share() -> None:
    """One node, three 8-core L3 groups, no SMT. Guest a has group 0-7 (6-7 offline) to itself with 1
    CPU, guest b has group 16-23 with 3; of group 8-15 only 8-9 are online, idle. A 3-vCPU newcomer fits
    no idle group, so either busy group is fair for it, and both have 5 CPUs free. Joining a's leaves 2
    free there while the idle pair could hold a's 1: a's share becomes needless (VT105 judges a too).
    Joining b's is clean: b's 3 fit no idle group."""
    host = make_host(nodes=1, cores_per_node=24, threads=1, l3_per_node=3, offline="6-7,10-15")
    a, b = CpuSet([0]), CpuSet([16, 17, 18])
    tenants = [Tenant(name=n, cpus=c, vcpus=len(c), cache=c, alone=True) for n, c in (("a", a), ("b", b))]
    free = host.online - a - b
    views, levels = (
        core_views(host, free, ThreadPolicy.REQUIRE, partial=False),
        grouping_levels(host, with_nodes=False),
    )
    pick = pick_in_domain(host=host, views=views, vcpus=3, policy=ThreadPolicy.REQUIRE, levels=levels,
                          tenants=tenants, latency=False, free=free)  # fmt: skip
    assert pick is not None
    assert pick.cpu_set.issubset(CpuSet.parse("19-23")), pick.cpus
    uses = [("a", a), ("b", b), ("new", pick.cpu_set)]
    for key, _ in uses:
        assert list(needless_shares(host, uses, CpuSet(), key)) == [], key


def test_a_pack_newcomer_fills_a_packing_neighbours_group_but_not_an_own_ones() -> None:
    """One node, two 8-core L3 groups, no SMT; guest a holds 0-3. A 2-vCPU ``pack`` newcomer fills a's
    group (the fullest that holds it: the idle group stays whole for a wide guest) when a packs too, and
    takes the idle group when a keeps its group alone - else a's share would be needless."""
    host = make_host(nodes=1, cores_per_node=16, threads=1, l3_per_node=2)
    a = CpuSet.parse("0-3")
    free = host.online - a
    views, levels = (
        core_views(host, free, ThreadPolicy.REQUIRE, partial=False),
        grouping_levels(host, with_nodes=False),
    )
    picks = {}
    for alone in (False, True):
        tenants = [Tenant(name="a", cpus=a, vcpus=4, cache=a, alone=alone)]
        pick = pick_in_domain(host=host, views=views, vcpus=2, policy=ThreadPolicy.REQUIRE, levels=levels,
                              tenants=tenants, latency=False, free=free)  # fmt: skip
        assert pick is not None
        picks[alone] = pick.cpu_set
    assert picks[False] == CpuSet.parse("4-5")
    assert picks[True] == CpuSet.parse("8-9")


@pytest.mark.parametrize("host_name", ["epyc-genoa-nps1", "epyc-2ccx-per-node"])
def test_prefer_streams_that_fill_the_host_never_split_a_core_with_a_guest_that_keeps_it_whole(
    host_name: str,
) -> None:
    """Odd and even sizes with the default intent (prefer, pack) until the host is full, so the last guests
    take the free threads of half-used cores: those are other prefer guests' only, which VT103 accepts, and
    pack shares no group with an own guest. Every tenant here is a vmtune plan, so no finding of either."""
    host = host_named(host_name)
    rng = random.Random(host_name)
    sizes = [rng.choice([1, 2, 3, 4, 5, 6, 7, 8, 12]) for _ in range(120)]
    placed = _plan_stream(host, sizes, Intent())
    split = [c for c in host.cores if len({g.name for g in placed if not g.vcpu_cpus.isdisjoint(c.cpus)}) > 1]
    assert split, "the stream never filled the host far enough to split a core"
    assert run_rules(host, placed, select=frozenset({"VT103", "VT105"})) == ()
    # a guest vmtune never planned keeps its cores whole: the same split cores are findings then
    foreign = [dataclasses.replace(placed[0], intent=None), *placed[1:]]
    shares_core = any(not placed[0].vcpu_cpus.isdisjoint(c.cpus) for c in split)
    assert bool(run_rules(host, foreign, select=frozenset({"VT103"}))) is shares_core
