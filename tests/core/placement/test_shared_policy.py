"""``--cpu-policy shared``: vCPUs time-share a pool (overcommit), kept off every dedicated guest's CPUs."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner_hosts import as_tenant, guest, host_named, tenant
from vmtune.cli.app import main
from vmtune.core.audit.engine import is_dedicated, run_rules
from vmtune.core.guest import GuestSpec
from vmtune.core.intent.model import CpuPolicy, EmulatorPolicy, Intent, Numa, Profile, ThreadPolicy
from vmtune.core.ledger.ownership import clashes, shared_cores
from vmtune.core.ledger.pool import build_ledger, default_reserve
from vmtune.core.plan import Level, Plan
from vmtune.core.planner import plan_guest
from vmtune.cpuset import CpuSet
from vmtune.errors import InfeasibleError, InputError

SHARED = Intent(cpu_policy=CpuPolicy.SHARED)
GIB = 1024 * 1024


def plan(host: str, g: GuestSpec, tenants: list[GuestSpec] | None = None, intent: Intent = SHARED) -> Plan:
    return plan_guest(host=host_named(host), guest=g, tenants=tenants or [], intent=intent)


def placed(p: Plan, g: GuestSpec) -> GuestSpec:
    """The guest after applying the plan, intent included (what the next plan sees as a tenant)."""
    return replace(as_tenant(p, g), intent=p.intent)


def pools(p: Plan) -> set[CpuSet]:
    return {pin.cpus for pin in p.vcpupins or ()}


# host, vCPUs, --reserve (None: default), expected pool, expected memory nodes
CASES = [
    # this machine's shape: 4 vCPUs on 2 CPUs; CPU 0 is the default housekeeping reserve
    ("small-2cpu", 4, None, "1", "0"),
    ("small-2cpu", 4, "", "0-1", "0"),
    # one node's worth of pool, never the reserved first core of the node
    ("dual-skylake-ht-interleaved", 8, None, "1-9,21-29", "0"),
    # node 0's first CCX is the default reserve: the roomiest node is node 1
    ("epyc-2ccx-per-node", 32, None, "8-15,40-47", "1"),
]


@pytest.mark.parametrize(("host", "vcpus", "reserve", "pool", "nodes"), CASES)
def test_pool_per_host(host: str, vcpus: int, reserve: str | None, pool: str, nodes: str) -> None:
    intent = replace(SHARED, reserve=None if reserve is None else CpuSet.parse(reserve))
    p = plan(host, guest("g", vcpus, 2), intent=intent)
    want = CpuSet.parse(pool)
    assert [pin.vcpu for pin in p.vcpupins or ()] == list(range(vcpus))
    assert pools(p) == {want}
    assert p.vcpu_cpuset == want and p.emulatorpin == want
    assert p.numatune is not None and str(p.numatune.nodeset) == nodes and not p.numatune.memnodes
    assert p.cpu is not None and p.cpu.topology is not None
    assert (p.cpu.topology.sockets, p.cpu.topology.cores, p.cpu.topology.threads) == (1, vcpus, 1)
    assert p.cpu.numa_cells == ()
    assert p.intent is not None and p.intent.cpu_policy is CpuPolicy.SHARED


def test_overcommit_beyond_nova_ratio_warns() -> None:
    p = plan("small-2cpu", guest("g", 5, 1))  # 5 vCPUs on 1 pool CPU
    warnings = [n.message for n in p.notes if n.level is Level.WARNING and n.topic == "cpu"]
    assert warnings and "overcommitted 5:1" in warnings[0]
    assert not [n for n in plan("small-2cpu", guest("g", 4, 1)).notes if n.level is Level.WARNING]


def test_pool_avoids_dedicated_tenants_but_overlaps_shared_ones() -> None:
    host = "dual-skylake-ht-interleaved"
    dedicated = tenant("db", [11, 31, 12, 32])  # node 1
    first_spec = guest("web1", 4, 2)
    first = plan(host, first_spec, [dedicated])
    # node 0's pool (18 CPUs) beats node 1's (14 left beside db)
    assert first.vcpu_cpuset == CpuSet.parse("1-9,21-29")
    second = plan(host, guest("web2", 4, 2), [dedicated, placed(first, first_spec)])
    # node 0's pool now carries web1's 4 vCPUs (8/18 per CPU with web2) against 4/14 on node 1
    assert second.vcpu_cpuset == CpuSet.parse("13-19,33-39")
    # a third shared guest on a full host shares a pool with them rather than failing
    third = plan(
        host, guest("web3", 2, 2), [dedicated, placed(first, first_spec), placed(second, guest("web2", 4, 2))]
    )
    assert third.vcpu_cpuset


def test_dedicated_guest_never_gets_a_shared_pool_cpu() -> None:
    host = "small-2cpu"
    spec = guest("pool", 4, 1)
    shared = placed(plan(host, spec, intent=replace(SHARED, reserve=CpuSet())), spec)
    with pytest.raises(InfeasibleError):
        plan(host, guest("ded", 1, 1), [shared], intent=Intent(reserve=CpuSet()))
    ledger = build_ledger(host=host_named(host), guest=guest("x", 1), tenants=[shared], reserve=CpuSet())
    assert ledger.free == CpuSet() and ledger.shared_free == CpuSet([0, 1])


def test_replan_is_idempotent() -> None:
    host = "epyc-2ccx-per-node"
    spec = guest("g", 6, 4)
    first = plan(host, spec)
    again = plan(
        host,
        replace(placed(first, spec), numatune_nodeset=first.numatune.nodeset if first.numatune else None),
    )
    assert again.vcpupins == first.vcpupins and again.numatune == first.numatune


def test_memory_too_big_for_one_node_spans_nodes() -> None:
    # epyc-2ccx-per-node: 42 GiB MemFree per node; 60 GiB needs two nodes
    p = plan("epyc-2ccx-per-node", guest("big", 4, 60))
    assert p.numatune is not None and len(p.numatune.nodeset) == 2
    assert p.vcpu_cpuset is not None and len(host_named("epyc-2ccx-per-node").nodes_of(p.vcpu_cpuset)) == 2
    with pytest.raises(InfeasibleError, match="does not fit the shared pool's nodes"):
        plan("epyc-2ccx-per-node", guest("huge", 4, 1000))


def test_numa_off_floats_over_the_whole_pool() -> None:
    p = plan("dual-skylake-ht-interleaved", guest("g", 4, 2), intent=replace(SHARED, numa=Numa(off=True)))
    host = host_named("dual-skylake-ht-interleaved")
    assert p.numatune is None and p.vcpu_cpuset == host.online - default_reserve(host)


def test_no_pool_left_is_infeasible_with_numbers() -> None:
    host = "small-2cpu"
    with pytest.raises(InfeasibleError, match="0 free: online 0-1, reserved 0, dedicated to other guests 1"):
        plan(host, guest("g", 2, 1), [tenant("ded", [1])])


@pytest.mark.parametrize(
    ("intent", "flag"),
    [
        (replace(SHARED, profiles=(Profile.LATENCY,)), "latency profile needs dedicated cores"),
        (replace(SHARED, profiles=(Profile.REALTIME,)), "realtime profile needs dedicated cores"),
        (replace(SHARED, thread_policy=ThreadPolicy.ISOLATE), "--thread-policy"),
        (replace(SHARED, emulator=EmulatorPolicy.ISOLATE), "--emulator"),
    ],
)
def test_knobs_that_need_dedicated_cores_are_refused(intent: Intent, flag: str) -> None:
    with pytest.raises(InputError, match=flag):
        plan("small-2cpu", guest("g", 4, 1), intent=intent)


def test_windows_profile_combines_with_shared() -> None:
    p = plan("small-2cpu", guest("win", 2, 1), intent=replace(SHARED, profiles=(Profile.WINDOWS,)))
    assert p.features is not None and p.features.hyperv
    assert pools(p) == {CpuSet([1])}


def test_audit_shared_guests_overlap_freely_but_not_on_dedicated_cpus() -> None:
    host = host_named("dual-skylake-ht-interleaved")
    a_spec, b_spec = guest("a", 4, 1), guest("b", 4, 1)
    a = placed(
        plan("dual-skylake-ht-interleaved", a_spec, intent=replace(SHARED, numa=Numa(off=True))), a_spec
    )
    b = replace(a, name="b", source="b.xml")
    assert not is_dedicated(a, host)
    found = run_rules(host, [a, b], tenants=[])
    assert not [f for f in found if f.code in ("VT103", "VT104")]
    assert not clashes(host, [a, b]) and not shared_cores(host, [a, b])
    ded = tenant("ded", [3])
    hits = [f for f in run_rules(host, [a], tenants=[ded]) if f.code == "VT104"]
    assert len(hits) == 1 and "shared pool CPUs 3 are pinned exclusively by ded" in hits[0].message
    assert [c.cpu for c in clashes(host, [a, ded])] == [3]
    del b_spec


@settings(max_examples=60, deadline=None)
@given(
    taken=st.lists(st.integers(0, 39), max_size=20, unique=True),
    shared_taken=st.lists(st.integers(0, 39), max_size=10, unique=True),
    vcpus=st.integers(1, 24),
)
def test_pool_invariants(taken: list[int], shared_taken: list[int], vcpus: int) -> None:
    host = host_named("dual-skylake-ht-interleaved")
    tenants = [tenant(f"d{c}", [c]) for c in taken]
    if shared_taken:
        tenants.append(replace(tenant("s", shared_taken), intent=SHARED))
    try:
        p = plan_guest(host=host, guest=guest("g", vcpus, 1), tenants=tenants, intent=SHARED)
    except InfeasibleError:
        assert not (host.online - default_reserve(host) - CpuSet(taken))
        return
    pool = p.vcpu_cpuset
    assert pool and pool.issubset(host.online)
    assert pool.isdisjoint(CpuSet(taken)) and pool.isdisjoint(default_reserve(host))
    assert len(host.nodes_of(pool)) == 1  # 1 GiB fits any node
    assert pools(p) == {pool} and p.emulatorpin == pool
    assert p == plan_guest(host=host, guest=guest("g", vcpus, 1), tenants=tenants, intent=SHARED)


def test_cli_apply_stores_policy_and_replan_is_unchanged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from testutil import HOSTS

    src = tmp_path / "g.xml"
    src.write_text(
        "<domain type='kvm'>\n  <name>g</name>\n  <memory unit='MiB'>256</memory>\n  <vcpu>4</vcpu>\n"
        "  <os><type arch='x86_64'>hvm</type></os>\n</domain>\n"
    )
    out = tmp_path / "out.xml"
    root = HOSTS / "this-machine"
    assert main(["apply", str(src), "--sysfs", str(root), "--cpu-policy", "shared", "-o", str(out)]) == 0
    text = out.read_text()
    assert "cpu-policy='shared'" in text and text.count("<vcpupin ") == 4
    capsys.readouterr()
    assert main(["plan", str(out), "--sysfs", str(root)]) == 0  # stored intent reused
    assert capsys.readouterr().out == ""
    assert main(["plan", str(src), "--sysfs", str(root), "--cpu-policy", "bogus"]) == 2
    assert "--cpu-policy" in capsys.readouterr().err


def test_map_marks_a_shared_pool_without_alarm() -> None:
    from vmtune.render.hostmap import map_lines

    host = host_named("dual-skylake-ht-interleaved")
    a_spec = guest("s1", 4, 1)
    a = placed(plan("dual-skylake-ht-interleaved", a_spec), a_spec)
    b = replace(a, name="s3", source="s3.xml")
    ded = tenant("db", [5])
    text = "\n".join(line.plain for line, _ in map_lines(host, [a, b]))
    assert "s1: 18 CPUs: 1-9,21-29 (shared pool, 4 vCPUs)" in text
    assert "~ time-shared by several --cpu-policy shared domains: s1+s3 on 1-9,21-29" in text
    assert "!" not in text and "is pinned by" not in text
    text = "\n".join(line.plain for line, _ in map_lines(host, [a, b, ded]))
    assert "! CPU 5 is pinned by db and s1 and s3" in text
