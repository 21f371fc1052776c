"""Invariants of plan_guest over random tenants and requests (hypothesis, derandomized in CI)."""

from __future__ import annotations

from functools import cache

from hypothesis import given
from hypothesis import strategies as st

from planner_hosts import guest, host_named, tenant
from vmtune.core.guest import GuestSpec
from vmtune.core.intent import Intent, ThreadPolicy
from vmtune.core.ledger import default_reserve
from vmtune.core.planner import plan_guest
from vmtune.core.topology import Host
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


def _whole_units(host: Host, free: CpuSet, policy: ThreadPolicy, node: int | None = None) -> int:
    cores = [c for c in host.cores if c.cpus and c.cpus.issubset(free) and (node is None or c.node == node)]
    return len(cores) if policy is ThreadPolicy.ISOLATE else sum(len(c.cpus) for c in cores)


@given(scenarios())
def test_plan_invariants(scenario: tuple[Host, list[GuestSpec], int, ThreadPolicy]) -> None:
    host, tenants, vcpus, policy = scenario
    g = guest(vcpus=vcpus, memory_gib=0.5)
    intent = Intent(thread_policy=policy)
    taken = CpuSet().union(*(t.vcpu_cpus for t in tenants))
    reserved = (host.online - host.isolated) if host.isolated else default_reserve(host)
    base = host.isolated if host.isolated else host.online
    free = base - reserved - taken
    try:
        plan = plan_guest(host=host, guest=g, tenants=tenants, intent=intent)
    except InfeasibleError:
        # infeasible only when the whole-core units (prefer: any free CPU) really are too few
        units = len(free) if policy is ThreadPolicy.PREFER else _whole_units(host, free, policy)
        assert units < vcpus
        return
    pins = [p.cpus for p in plan.vcpupins or ()]
    assert [p.vcpu for p in plan.vcpupins or ()] == list(range(vcpus))
    assert all(len(p) == 1 for p in pins)
    cpus = CpuSet().union(*pins)
    assert len(cpus) == vcpus  # exact size, one host CPU per vCPU
    assert cpus.issubset(host.online)
    assert cpus.isdisjoint(taken)
    assert cpus.isdisjoint(reserved)
    # deterministic
    assert plan_guest(host=host, guest=g, tenants=tenants, intent=intent) == plan
    cores = {c.index: c for c in (host.core_of(x) for x in cpus) if c is not None}
    if _whole_units(host, free, policy) >= vcpus:
        # whole cores when whole cores suffice: no core shared with a tenant
        assert all(core.cpus.isdisjoint(taken) for core in cores.values())
    if policy is ThreadPolicy.ISOLATE:
        assert len(cores) == vcpus
    if any(_whole_units(host, free, policy, n.id) >= vcpus for n in host.nodes):
        assert len(host.nodes_of(cpus)) == 1


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
