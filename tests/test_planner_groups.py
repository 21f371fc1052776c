"""Cache groups (issue 3, priority 4) are the fewest the higher-priority rules leave room for.

The oracle here is independent of the allocator: for each guest of a seeded sequence filling a named host, the
fewest cache groups any placement could span given the rules that outrank cache groups - wholly free cores
when they hold the guest (priority 2), the fewest NUMA nodes and among those the closest sets by SLIT distance
(priority 3) - counted largest free group first. The planner must meet it for every guest: more groups than
that is a placement the rules did not force (the bench's ``grp/rule`` column, summed, is exactly this).
"""

from __future__ import annotations

import random
from functools import cache
from itertools import combinations

import pytest

from planner_hosts import as_tenant, guest, host_named
from vmtune.core.guest import GuestSpec
from vmtune.core.intent import Intent
from vmtune.core.ledger import default_reserve
from vmtune.core.numa import distance
from vmtune.core.planner import plan_guest
from vmtune.core.topology import Host
from vmtune.cpuset import CpuSet
from vmtune.errors import InfeasibleError


@cache
def _host(name: str) -> Host:
    return host_named(name)


def _group(host: Host, cpu: int) -> int | None:
    """The finest cache shared by several cores that ``cpu`` sits in (shared L2, else shared L3)."""
    core = host.core_of(cpu)
    if core is None:
        return None
    for key in (core.l2, core.l3):
        if key is not None and len({host.core_of(c) for c in host.caches[key].cpus}) > 1:
            return key
    return None


def _fewest_groups(host: Host, cpus: CpuSet, n: int) -> int:
    counts: dict[int | None, int] = {}
    for cpu in cpus:
        key = _group(host, cpu)
        counts[key] = counts.get(key, 0) + 1
    need, used = n, 0
    for count in sorted(counts.values(), reverse=True):
        if need <= 0:
            break
        need, used = need - count, used + 1
    return used


def _rule_minimum(host: Host, free: CpuSet, n: int) -> int:
    whole = CpuSet().union(*(c.cpus for c in host.cores if c.cpus and c.cpus.issubset(free)))
    base = whole if len(whole) >= n else free
    room = {node.id: node.cpus & base for node in host.nodes}
    ids = [i for i, cpus in room.items() if cpus]
    for size in range(1, len(ids) + 1):
        sets = [s for s in combinations(ids, size) if sum(len(room[i]) for i in s) >= n]
        if sets:
            spread = {s: sum(distance(host, a, b) for a, b in combinations(s, 2)) for s in sets}
            closest = min(spread.values())
            return min(
                _fewest_groups(host, CpuSet().union(*(room[i] for i in s)), n)
                for s in sets
                if spread[s] == closest
            )
    raise AssertionError("the planner placed a guest the free pool can't hold")


def _fill(name: str, seed: int) -> list[tuple[int, int, int]]:
    """(vCPUs, groups spanned, rule minimum) for each guest placed until the host refuses 10 in a row."""
    host = _host(name)
    rng = random.Random(f"{seed}-{name}")
    widest = max(len(n.cpus) for n in host.nodes)
    tenants: list[GuestSpec] = []
    out: list[tuple[int, int, int]] = []
    taken, refusals = CpuSet(), 0
    pool = host.online - default_reserve(host)
    while refusals < 10:
        n = rng.choice((1, 1, 2, 2, 4, 4, 8, 8, 16, 32, widest + 2))
        spec = guest(name=f"g{len(out)}", vcpus=n, memory_gib=n / 4)
        try:
            plan = plan_guest(host=host, guest=spec, tenants=tenants, intent=Intent())
        except InfeasibleError:
            refusals += 1
            continue
        refusals = 0
        cpus = CpuSet(p.cpus.first() for p in plan.vcpupins or ())
        spanned = len({_group(host, c) for c in cpus})
        out.append((n, spanned, _rule_minimum(host, pool - taken, n)))
        taken = taken | (plan.vcpu_cpuset or cpus)
        tenants.append(as_tenant(plan, spec))
    return out


@pytest.mark.parametrize(
    "name", ["phytium-s2500", "epyc-2ccx-per-node", "dual-ht-adjacent", "hybrid-pe", "snc2-xeon", "big-256"]
)
@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_every_guest_spans_the_fewest_groups_the_rules_allow(name: str, seed: int) -> None:
    placed = _fill(name, seed)
    assert len(placed) >= 3
    extra = [(i, n, spanned, least) for i, (n, spanned, least) in enumerate(placed) if spanned != least]
    assert extra == [], "guest (index, vCPUs, groups spanned, rule minimum)"


def test_phytium_wide_guest_takes_the_whole_clusters_of_its_five_nodes() -> None:
    # 32 vCPUs, 7 free cores per node (core 0 of each is reserved): 5 nodes. Their ten L2 clusters hold
    # 4 free cores (five of them) or 3 (five): 4*5 + 3*4 = 32 in 9 clusters. 8 whole clusters would do on
    # 8 nodes, but node count outranks cache groups.
    host = _host("phytium-s2500")
    plan = plan_guest(host=host, guest=guest(vcpus=32, memory_gib=8), tenants=[], intent=Intent())
    cpus = CpuSet(p.cpus.first() for p in plan.vcpupins or ())
    assert sorted(host.nodes_of(cpus)) == [0, 1, 2, 3, 4]
    assert len({_group(host, c) for c in cpus}) == 9
    assert _rule_minimum(host, host.online - default_reserve(host), 32) == 9


@pytest.mark.xfail(
    strict=True,
    reason="known gap: a guest that fits neither core kind takes the larger kind whole (7 E-cores over two "
    "L2 clusters) plus 1 P-core; 6 P-cores (no shared L2) plus 2 E-cores in one cluster span a group less. "
    "allocator rule 3 takes the largest groups whole without weighing the groups below them.",
)
def test_hybrid_guest_fitting_neither_kind_spans_the_fewest_groups() -> None:
    placed = _fill("hybrid-pe", 5)
    assert [(n, spanned) for n, spanned, least in placed if spanned != least] == []
