"""Invariants of plan_guest over random tenants and requests (hypothesis, derandomized in CI)."""

from __future__ import annotations

from functools import cache
from itertools import combinations, islice

from hypothesis import given
from hypothesis import strategies as st

from planner_hosts import guest, host_named, tenant
from vmtune.core.audit.engine import run_rules
from vmtune.core.guest import GuestSpec
from vmtune.core.intent.model import CacheFit, Fit, Intent, ThreadPolicy
from vmtune.core.ledger.pool import default_reserve
from vmtune.core.ledger.tenant import as_planned
from vmtune.core.placement.numa import distance
from vmtune.core.placement.numaspan import node_sets
from vmtune.core.planner import plan_guest
from vmtune.core.topology.model import Host
from vmtune.cpuset import CpuSet
from vmtune.errors import InfeasibleError

HOSTS = ("dual-ht-adjacent", "epyc-2ccx-per-node", "phytium-s2500", "hybrid-pe", "offline-cpus", "snc2-xeon")


@cache
def _host(name: str) -> Host:
    return host_named(name)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Host, list[GuestSpec], int, ThreadPolicy]:
    host = _host(draw(st.sampled_from(HOSTS)))
    online = sorted(host.online)
    tenants = []
    for i in range(draw(st.integers(0, 3))):
        cpus = draw(st.lists(st.sampled_from(online), min_size=1, max_size=12, unique=True))
        tenants.append(tenant(f"t{i}", cpus))
    vcpus = draw(st.integers(1, 16))
    policy = draw(st.sampled_from(list(ThreadPolicy)))
    return host, tenants, vcpus, policy


def _whole_units(
    host: Host, free: CpuSet, policy: ThreadPolicy, node: int | None = None, *, width: int | None = None
) -> int:
    cores = [
        c
        for c in host.cores
        if c.cpus
        and c.cpus.issubset(free)
        and (node is None or c.node == node)
        and (width is None or len(c.cpus) == width)
    ]
    return len(cores) if policy is ThreadPolicy.ISOLATE else sum(len(c.cpus) for c in cores)


@given(scenarios(), st.sampled_from(Fit), st.sampled_from(CacheFit))
def test_plan_invariants(
    scenario: tuple[Host, list[GuestSpec], int, ThreadPolicy], numa_fit: Fit, cache_fit: CacheFit
) -> None:
    host, tenants, vcpus, policy = scenario
    g = guest(vcpus=vcpus, memory_gib=0.5)
    intent = Intent(thread_policy=policy, numa_fit=numa_fit, cache_fit=cache_fit)
    taken = CpuSet().union(*(t.vcpu_cpus for t in tenants))
    reserved = (host.online - host.isolated) if host.isolated else default_reserve(host)
    base = host.isolated if host.isolated else host.online
    free = base - reserved - taken
    try:
        plan = plan_guest(host=host, guest=g, tenants=tenants, intent=intent)
    except InfeasibleError:
        # infeasible only when the whole-core units (prefer: any free CPU; require: whole cores of one
        # width, so the guest topology can tell the siblings) really are too few
        units = _whole_units(host, free, policy)
        if policy is ThreadPolicy.PREFER:
            # any free CPU, except the free threads of the tenants' cores: they were never planned by
            # vmtune, so they keep their cores whole (``sharing.keeps_cores_whole``)
            guarded = CpuSet().union(*(c.cpus for c in host.cores if not c.cpus.isdisjoint(taken)))
            units = len(free - guarded)
        if policy is ThreadPolicy.REQUIRE:
            widths = {len(c.cpus) for c in host.cores if c.cpus}
            units = max(_whole_units(host, free, policy, width=w) for w in widths)
        assert units < vcpus
        return
    pins = [p.cpus for p in plan.vcpupins or ()]
    # an odd guest on 2-thread cores may get an offline vCPU on its lone vCPU's sibling (round_to_cores)
    slots = plan.vcpu_slots or vcpus
    if plan.vcpu_slots is not None:
        assert vcpus % 2 == 1 and slots == vcpus + 1 and plan.vcpu_current == vcpus
    assert [p.vcpu for p in plan.vcpupins or ()] == list(range(slots))
    assert all(len(p) == 1 for p in pins)
    cpus = CpuSet().union(*pins)
    assert len(cpus) == slots  # exact size, one host CPU per vCPU
    assert cpus.issubset(host.online)
    assert cpus.isdisjoint(taken)
    assert cpus.isdisjoint(reserved)
    # deterministic
    assert plan_guest(host=host, guest=g, tenants=tenants, intent=intent) == plan
    cores = {c.index: c for c in (host.core_of(x) for x in cpus) if c is not None}
    if _whole_units(host, free, policy) >= slots:
        # whole cores when whole cores suffice: no core shared with a tenant
        assert all(core.cpus.isdisjoint(taken) for core in cores.values())
    if policy is ThreadPolicy.ISOLATE:
        assert len(cores) == vcpus
    if any(_whole_units(host, free, policy, n.id) >= slots for n in host.nodes):
        assert len(host.nodes_of(cpus)) == 1


@given(scenarios(), st.sampled_from(Fit), st.sampled_from(CacheFit))
def test_a_plan_never_shares_a_cache_group_needlessly(
    scenario: tuple[Host, list[GuestSpec], int, ThreadPolicy], numa_fit: Fit, cache_fit: CacheFit
) -> None:
    """Planner and VT105 share one rule (``placement.sharing``): whatever the fits, the guest just placed
    gets no VT105, and no node holds more of its memory than it has free."""
    host, tenants, vcpus, policy = scenario
    g = guest(vcpus=vcpus, memory_gib=0.5)
    intent = Intent(thread_policy=policy, numa_fit=numa_fit, cache_fit=cache_fit)
    try:
        plan = plan_guest(host=host, guest=g, tenants=tenants, intent=intent)
    except InfeasibleError:
        return
    placed = as_planned(g, plan)
    assert run_rules(host, (placed,), tenants=tenants, select=frozenset({"VT105"})) == ()
    # no node over its memory: each cell's share fits the MemFree of the node it is bound to
    for memnode, cell in zip(plan.numatune.memnodes if plan.numatune else (), plan.cpu.numa_cells or (),
                             strict=False):  # fmt: skip
        node = host.node(memnode.nodeset.first())
        assert node is not None and cell.memory_kib <= (node.mem_free_kib or cell.memory_kib)


@given(scenarios())
def test_replan_is_idempotent(scenario: tuple[Host, list[GuestSpec], int, ThreadPolicy]) -> None:
    host, tenants, vcpus, policy = scenario
    g = guest(vcpus=vcpus, memory_gib=0.5)
    intent = Intent(thread_policy=policy)
    try:
        first = plan_guest(host=host, guest=g, tenants=tenants, intent=intent)
    except InfeasibleError:
        return
    placed = GuestSpec(name=g.name, source=g.source, vcpus=vcpus, memory_kib=g.memory_kib,
                       vcpupins=first.vcpupins or (), emulatorpin=first.emulatorpin)  # fmt: skip
    again = plan_guest(host=host, guest=placed, tenants=tenants, intent=intent)
    assert again.vcpupins == first.vcpupins
    assert again.emulatorpin == first.emulatorpin


@st.composite
def node_rooms(draw: st.DrawFn) -> tuple[dict[int, int], int, int | None]:
    """Free units on some of huge-960's 16 nodes, a guest wider than one node, maybe a PCI node."""
    ids = draw(st.lists(st.integers(0, 15), min_size=3, max_size=16, unique=True))
    caps = {i: draw(st.sampled_from((1, 2, 3, 4, 6, 8, 20, 58))) for i in ids}
    vcpus = draw(st.integers(max(caps.values()) + 1, max(max(caps.values()) + 1, sum(caps.values()))))
    pci = draw(st.none() | st.sampled_from(ids))
    return caps, vcpus, pci


@given(node_rooms(), st.sampled_from(Fit))
def test_node_sets_rank_every_combination_on_big_hosts(
    case: tuple[dict[int, int], int, int | None], fit: Fit
) -> None:
    # 16 nodes: sets of 4-12 nodes come from a branch and bound, not a listing of every combination; the
    # order must be the listing's: fewest nodes, PCI node in, closest by SLIT distance, the least room
    # that holds the guest (pack) or the most (spread), ids
    caps, vcpus, pci = case
    host = _host("huge-960")
    if sum(caps.values()) < vcpus:
        assert list(node_sets(host, caps, vcpus, 0, pci, fit=fit)) == []
        return
    got = list(islice(node_sets(host, caps, vcpus, 0, pci, fit=fit), 12))
    sign = 1 if fit is Fit.PACK else -1
    expected: list[tuple[int, ...]] = []
    for size in range(2, len(caps) + 1):
        sets = [c for c in combinations(sorted(caps), size) if sum(caps[n] for n in c) >= vcpus]
        if sets:
            expected = sorted(sets, key=lambda c: (
                int(pci is not None and pci not in c),
                sum(distance(host, a, b) for a, b in combinations(c, 2)),
                sign * sum(caps[n] for n in c),
                c,
            ))[:12]  # fmt: skip
            break
    assert got[: len(expected)] == expected
    assert len(got[0]) == len(expected[0])
