"""plan_guest over named hosts: concrete requests and the exact CPUs they must get."""

from __future__ import annotations

import dataclasses

import pytest

from planner_hosts import GIB, as_tenant, cores_of, guest, host_named, tenant
from rulehosts import make_host
from vmtune.core.guest import GuestSpec, NumaCell, VcpuPin
from vmtune.core.intent.model import (
    CacheFit,
    CoreKind,
    EmulatorPolicy,
    Fit,
    Intent,
    Numa,
    Profile,
    ThreadPolicy,
)
from vmtune.core.plan import Level, Plan
from vmtune.core.planner import plan_guest
from vmtune.cpuset import CpuSet
from vmtune.errors import InfeasibleError


def pins(plan: Plan) -> list[int]:
    return [p.cpus.first() for p in plan.vcpupins or ()]


def plan(host: str, g: GuestSpec, tenants: list[GuestSpec] | None = None, **intent: object) -> Plan:
    return plan_guest(host=host_named(host), guest=g, tenants=tenants or [], intent=Intent(**intent))  # type: ignore[arg-type]


# host, vCPUs, intent knobs, tenants' pinned CPUs, expected vCPU pins in guest order, expected node set
FIRST_CORES = CpuSet(range(0, 64, 8))  # the first core of each node of the 8-node test hosts
CASES = [
    # first core of each node is reserved; siblings adjacent in guest order (interleaved numbering: N, N+20)
    ("dual-skylake-ht-interleaved", 4, {}, [], [1, 21, 2, 22], "0"),
    # node 0 mostly taken: its last 2 cores are the best fit (pack); spread takes node 1, the emptiest
    ("dual-skylake-ht-interleaved", 4, {}, [range(1, 8)], [8, 28, 9, 29], "0"),
    ("dual-skylake-ht-interleaved", 4, {"numa_fit": Fit.SPREAD}, [range(1, 8)], [11, 31, 12, 32], "1"),
    # adjacent numbering, isolate: one thread per core, siblings left empty
    ("dual-ht-adjacent", 4, {"thread_policy": ThreadPolicy.ISOLATE}, [], [2, 4, 6, 8], "0"),
    # the node choice under the first-core-of-each-node reserve (FIRST_CORES); the cache-aware default
    # reserve below
    # EPYC NPS4: 8 vCPUs = one whole idle CCX (4 cores x 2 threads); node 0's first CCX holds the reserve
    ("epyc-2ccx-per-node", 8, {"reserve": FIRST_CORES}, [], [4, 36, 5, 37, 6, 38, 7, 39], "0"),
    # a small guest never joins another's CCX with room left while one is idle: node 1 (the fullest)'s
    # other CCX; but it closes a hole exactly (core 11 is all node 1's first CCX has left)
    ("epyc-2ccx-per-node", 2, {"reserve": FIRST_CORES}, [[12, 44]], [9, 41], "1"),
    ("epyc-2ccx-per-node", 2, {"reserve": FIRST_CORES}, [[9, 41, 10, 42]], [11, 43], "1"),
    # --cache-fit spread: a core per CCX in turn, the roomier CCX first
    (
        "epyc-2ccx-per-node",
        8,
        {"cache_fit": CacheFit.SPREAD, "reserve": FIRST_CORES},
        [],
        [1, 33, 2, 34, 4, 36, 5, 37],
        "0",
    ),
    # a big guest never joins a used CCX while an idle one holds it
    ("epyc-2ccx-per-node", 8, {"reserve": FIRST_CORES}, [[4, 36]], [12, 44, 13, 45, 14, 46, 15, 47], "1"),
    # Phytium: 4 vCPUs = one whole idle L2 cluster of 4 cores (not the 3 left beside the reserved core)
    ("phytium-s2500", 4, {"reserve": FIRST_CORES}, [], [4, 5, 6, 7], "0"),
    # hybrid: latency guests get the P cores, one per vCPU; --core-kind little the E cluster
    ("hybrid-pe", 4, {"profiles": (Profile.LATENCY,), "reserve": CpuSet.parse("0-1")}, [], [2, 4, 6, 8], "0"),
    (
        "hybrid-pe",
        4,
        {"core_kind": CoreKind.LITTLE, "reserve": CpuSet.parse("0-1")},
        [],
        [16, 17, 18, 19],
        "0",
    ),
    # the cache-aware default reserve: node 0's first CCX whole (EPYC), the first L2 cluster (Phytium), one
    # E-core cluster (hybrid); the next guest takes the idle group beside it on the fullest node
    ("epyc-2ccx-per-node", 8, {}, [], [4, 36, 5, 37, 6, 38, 7, 39], "0"),
    ("epyc-2ccx-per-node", 2, {}, [[12, 44]], [4, 36], "0"),
    # node 0's only guest CCX is half used: with no idle CCX on node 0, a small guest shares it (pack keeps
    # node 1 whole for a wide guest: another node's idle CCX is the NUMA fit's business); spread takes node 1
    ("epyc-2ccx-per-node", 2, {}, [[4, 36, 5, 37]], [6, 38], "0"),
    ("epyc-2ccx-per-node", 2, {"numa_fit": Fit.SPREAD}, [[4, 36, 5, 37]], [8, 40], "1"),
    ("phytium-s2500", 4, {}, [], [4, 5, 6, 7], "0"),
    ("hybrid-pe", 4, {"profiles": (Profile.LATENCY,)}, [], [0, 2, 4, 6], "0"),
    ("hybrid-pe", 4, {"core_kind": CoreKind.LITTLE}, [], [20, 21, 22, 23], "0"),
    # isolcpus: vCPUs inside the isolated set; node 0 has 8 isolated cores, node 1 has 10: best fit node 0
    ("snc2-xeon", 4, {}, [], [2, 42, 3, 43], "0"),
    # offline CPUs 3 and 12 are never used
    ("offline-cpus", 6, {}, [], [5, 13, 6, 14, 7, 15], "1"),
]


@pytest.mark.parametrize(("host", "vcpus", "knobs", "taken", "expected", "nodes"), CASES)
def test_concrete_requests(  # noqa: PLR0917 - one parameter per table column
    host: str, vcpus: int, knobs: dict[str, object], taken: list[list[int]], expected: list[int], nodes: str
) -> None:
    tenants = [tenant(f"t{i}", cpus) for i, cpus in enumerate(taken)]
    result = plan(host, guest(vcpus=vcpus, memory_gib=1), tenants, **knobs)
    assert pins(result) == expected
    assert result.numatune is not None
    assert result.numatune.nodeset == CpuSet.parse(nodes)


def test_isolate_claims_the_empty_siblings_in_vcpu_cpuset() -> None:
    result = plan("dual-ht-adjacent", guest(vcpus=4, memory_gib=1), thread_policy=ThreadPolicy.ISOLATE)
    assert result.vcpu_cpuset == CpuSet.parse("2-9")
    # and the next guest does not get those siblings
    nxt = plan_guest(
        host=host_named("dual-ht-adjacent"),
        guest=guest("next", vcpus=4, memory_gib=1),
        tenants=[as_tenant(result, guest(vcpus=4, memory_gib=1))],
        intent=Intent(),
    )
    assert CpuSet(pins(nxt)).isdisjoint(CpuSet.parse("2-9"))


@pytest.mark.parametrize(
    ("fit", "split"),
    # pack fills node 0's 9 free cores and leaves node 1 6 whole cores for a later guest (3 + 3 would
    # hold no 12-vCPU guest in one node); spread splits evenly, 6 cores a node, so the cells are alike
    [(Fit.PACK, [("0-17", 6), ("18-23", 2)]), (Fit.SPREAD, [("0-11", 4), ("12-23", 4)])],
)
def test_wide_guest_gets_cells_mirroring_the_nodes(fit: Fit, split: list[tuple[str, int]]) -> None:
    result = plan("dual-skylake-ht-interleaved", guest(vcpus=24, memory_gib=8), numa_fit=fit)
    assert result.numatune is not None and result.cpu is not None and result.cpu.topology is not None
    assert result.numatune.nodeset == CpuSet.parse("0-1")
    assert [(m.cellid, str(m.nodeset)) for m in result.numatune.memnodes] == [(0, "0"), (1, "1")]
    # memory follows the vCPUs; the host's SLIT between the two nodes
    cells = result.cpu.numa_cells or ()
    assert [(str(c.cpus), c.memory_kib) for c in cells] == [(cpus, gib * GIB) for cpus, gib in split]
    host = host_named("dual-skylake-ht-interleaved")
    far = host.nodes[0].distance_to(1)
    assert far is not None and far > 10
    assert [c.distances for c in cells] == [((0, 10), (1, far)), ((0, far), (1, 10))]
    t = result.cpu.topology
    # alike cells: one socket each; unlike ones: one socket (a socket per cell would claim 9 + 3 cores)
    assert (t.sockets, t.cores, t.threads) == ((2, 6, 2) if fit is Fit.SPREAD else (1, 12, 2))


def test_memory_too_big_for_one_node_spans_two() -> None:
    # MemFree per node is 79.6 GiB on this host: 100 GiB needs both nodes although 4 vCPUs fit one
    result = plan("dual-skylake-ht-interleaved", guest(vcpus=4, memory_gib=100))
    assert result.numatune is not None and result.cpu is not None
    assert result.numatune.nodeset == CpuSet.parse("0-1")
    assert [c.memory_kib for c in result.cpu.numa_cells or ()] == [50 * 1024 * 1024] * 2


def test_memory_infeasible_says_needed_vs_free_per_node() -> None:
    with pytest.raises(InfeasibleError, match=r"node 0 needs 200 GiB, 79\.6 GiB available; node 1"):
        plan("dual-skylake-ht-interleaved", guest(vcpus=4, memory_gib=200))


def test_require_fails_rather_than_split_cores() -> None:
    # tenants a and b (thread policy prefer, the default) each hold one thread of every core left
    half = [
        dataclasses.replace(tenant(name, cpus), intent=Intent())
        for name, cpus in (("a", range(2, 16, 2)), ("b", range(18, 32, 2)))
    ]
    with pytest.raises(InfeasibleError, match="whole cores required"):
        plan("dual-ht-adjacent", guest(vcpus=4, memory_gib=1), half, thread_policy=ThreadPolicy.REQUIRE)
    shared = plan("dual-ht-adjacent", guest(vcpus=4, memory_gib=1), half)
    assert pins(shared) == [3, 5, 7, 9]
    assert any(n.level is Level.WARNING and "share a physical core" in n.message for n in shared.notes)


@pytest.mark.parametrize(
    "keeps", [None, Intent(thread_policy=ThreadPolicy.REQUIRE), Intent(profiles=(Profile.LATENCY,))]
)
def test_prefer_never_takes_half_a_core_of_a_guest_that_keeps_cores_whole(keeps: Intent | None) -> None:
    """Tenant b keeps its cores whole (require, isolate by the latency profile, or never planned by
    vmtune: VT103 judges its cores), so a prefer newcomer takes only the free threads of prefer tenant
    a's cores, and is refused when those are too few."""
    a = dataclasses.replace(tenant("a", range(2, 16, 2)), intent=Intent())
    b = dataclasses.replace(tenant("b", range(18, 32, 2)), intent=keeps)
    assert pins(plan("dual-ht-adjacent", guest(vcpus=4, memory_gib=1), [a, b])) == [3, 5, 7, 9]
    with pytest.raises(InfeasibleError):
        plan("dual-ht-adjacent", guest(vcpus=8, memory_gib=1), [a, b])


def test_emulator_share_uses_housekeeping_of_the_guest_node() -> None:
    result = plan("dual-skylake-ht-interleaved", guest(vcpus=4, memory_gib=1))
    assert result.emulatorpin == CpuSet.parse("0,20")


def test_emulator_isolate_takes_a_sibling_for_latency_not_for_realtime() -> None:
    lat = plan("dual-ht-adjacent", guest(vcpus=4, memory_gib=1), profiles=(Profile.LATENCY,))
    assert lat.emulatorpin == CpuSet([3])  # the empty sibling of vCPU 0's core
    rt = plan("dual-ht-adjacent", guest(vcpus=4, memory_gib=1), profiles=(Profile.REALTIME,))
    assert rt.emulatorpin == CpuSet([10])  # a free core of its own
    assert rt.emulatorpin.isdisjoint(
        CpuSet().union(*(host_named("dual-ht-adjacent").siblings(c) for c in pins(rt)))
    )


def test_isolcpus_emulator_outside_vcpus_inside() -> None:
    host = host_named("snc2-xeon")
    result = plan("snc2-xeon", guest(vcpus=4, memory_gib=1), emulator=EmulatorPolicy.ISOLATE, iothreads=1)
    assert CpuSet(pins(result)).issubset(host.isolated)
    assert result.emulatorpin is not None and result.emulatorpin.isdisjoint(host.isolated)
    assert [p.iothread for p in result.iothreadpins or ()] == [1]


def test_pci_device_node_wins_when_it_fits() -> None:
    from vmtune.core.topology.caps import HostCaps

    g = guest(vcpus=4, memory_gib=1, hostdev_pci=("0000:81:00.0",))
    caps = HostCaps(pci_numa=(("0000:81:00.0", 1),))
    result = plan_guest(host=host_named("dual-skylake-ht-interleaved"), guest=g, tenants=[], intent=Intent(),
                        caps=caps)  # fmt: skip
    assert result.numatune is not None and result.numatune.nodeset == CpuSet([1])


def test_floating_tenant_warns() -> None:
    result = plan(
        "dual-ht-adjacent", guest(vcpus=2, memory_gib=1), [GuestSpec(name="drifter", source="d.xml")]
    )
    assert any(n.level is Level.WARNING and "drifter" in n.message for n in result.notes)


def test_replan_keeps_well_placed_pins_even_when_the_host_changed() -> None:
    g = guest(vcpus=4, memory_gib=1)
    first = plan("dual-skylake-ht-interleaved", g)
    placed = GuestSpec(
        name=g.name, source=g.source, vcpus=4, memory_kib=g.memory_kib, vcpupins=first.vcpupins or ()
    )
    # node 1 is emptier now than node 0 would be after this guest; the guest still stays put
    again = plan("dual-skylake-ht-interleaved", placed, [tenant("other", [5, 25])])
    assert pins(again) == pins(first)
    assert any("kept as they are" in n.message for n in again.notes)


def test_replan_moves_badly_placed_pins() -> None:
    # vCPUs straddling two nodes although one node has room
    bad = (VcpuPin(vcpu=0, cpus=CpuSet([1])), VcpuPin(vcpu=1, cpus=CpuSet([11])))
    g = guest(vcpus=2, memory_gib=1, vcpupins=bad)
    result = plan("dual-skylake-ht-interleaved", g)
    assert len(host_named("dual-skylake-ht-interleaved").nodes_of(CpuSet(pins(result)))) == 1


def test_explicit_reserve_overrides_the_default() -> None:
    result = plan("dual-skylake-ht-interleaved", guest(vcpus=4, memory_gib=1), reserve=CpuSet.parse("5,15"))
    assert pins(result) == [0, 20, 1, 21]
    assert any(n.message == "reserved CPUs 5,15 (--reserve)" for n in result.notes)


def test_huge_host_wide_guest_spans_fewest_cache_groups() -> None:
    host = host_named("huge-960")
    result = plan("huge-960", guest(vcpus=100, memory_gib=8))
    cpus = pins(result)
    assert len(cores_of(host, cpus)) == 50
    l3 = {host.core_of(c).caches.get(3) for c in cpus}  # type: ignore[union-attr]
    assert len(l3) == 6  # 25 cores per node: 2 whole idle L3 groups + the reserved one's remaining 9


@pytest.mark.parametrize(
    ("vcpus", "split"),
    [(8, ["0-3", "4-7"]), (7, ["0-3", "4-7"]), (12, ["0-5", "6-11"])],  # 7: an 8th offline slot, see odd-3
)
def test_numa_n_splits_evenly_and_says_it_was_asked(vcpus: int, split: list[str]) -> None:
    result = plan("dual-skylake-ht-interleaved", guest(vcpus=vcpus, memory_gib=2), numa=Numa(nodes=2))
    assert result.cpu is not None
    assert [str(c.cpus) for c in result.cpu.numa_cells or ()] == split
    note = next(n.message for n in result.notes if n.topic == "numa" and "node" in n.message)
    assert "as --numa 2 asks" in note and "too big" not in note


def test_wide_guest_splits_evenly_unless_that_cuts_a_cache_group() -> None:
    # big-256: a node is 2 L3 groups of 8 cores x 2 threads, the first with its reserved core. 40 vCPUs
    # need 2 nodes; 20 + 20 would span 4 L3 groups, 24 + 16 and 30 + 10 span 3: the fewer cache groups
    # win. Pack then fills node 0 and leaves node 1 20 free CPUs in one piece (24 + 16 leaves 6 and 14);
    # spread keeps the more even of the two. Over the 4 nodes --numa 4 asks, 10 each fit one group
    # each: the even split
    result = plan("big-256", guest(vcpus=40, memory_gib=8))
    assert result.cpu is not None
    assert [len(c.cpus) for c in result.cpu.numa_cells or ()] == [30, 10]
    result = plan("big-256", guest(vcpus=40, memory_gib=8), numa_fit=Fit.SPREAD)
    assert result.cpu is not None
    assert [len(c.cpus) for c in result.cpu.numa_cells or ()] == [24, 16]
    result = plan("big-256", guest(vcpus=40, memory_gib=8), numa=Numa(nodes=4))
    assert result.cpu is not None
    assert [len(c.cpus) for c in result.cpu.numa_cells or ()] == [10, 10, 10, 10]


def test_emulator_pins_on_housekeeping_cpus_leave_a_cache_group_idle() -> None:
    # EPYC NPS4: t's vCPUs fill node 0's second CCX, its emulator shares node 0's reserved core (0,32), in
    # node 0's first CCX: that CCX is still idle (not shared with t), and the best fit for 6 vCPUs
    host = host_named("epyc-2ccx-per-node")
    t = tenant("t", [4, 36, 5, 37, 6, 38, 7, 39], emulator=[0, 32])
    result = plan_guest(host=host, guest=guest(vcpus=6, memory_gib=1), tenants=[t],
                        intent=Intent(reserve=FIRST_CORES))  # fmt: skip
    assert pins(result) == [1, 33, 2, 34, 3, 35]
    assert any("L3 group CPUs 0-3,32-35" in n.message and "idle before this guest" in n.message
               for n in result.notes)  # fmt: skip


@pytest.mark.parametrize(("fit", "first_node"), [(Fit.PACK, "0"), (Fit.SPREAD, "1")])
def test_kept_cells_follow_the_numa_fit(fit: Fit, first_node: str) -> None:
    # two cells of 4 vCPUs, node 0 half taken: pack binds cell 0 to the fuller node, spread to the emptier
    cells = (
        NumaCell(id=0, cpus=CpuSet.parse("0-3"), memory_kib=GIB),
        NumaCell(id=1, cpus=CpuSet.parse("4-7"), memory_kib=GIB),
    )
    g = guest(vcpus=8, memory_gib=2, numa_cells=cells)
    result = plan("dual-skylake-ht-interleaved", g, [tenant("t", range(1, 6))], numa_fit=fit)
    assert result.numatune is not None
    assert str(result.numatune.memnodes[0].nodeset) == first_node


@pytest.mark.parametrize(
    ("tenant_intent", "fit", "expected"),
    [
        # a packing tenant's CCX (core 12 of node 1's second CCX) is the fullest that holds a pack newcomer
        (Intent(), CacheFit.PACK, [13, 45]),
        # an own newcomer takes the idle CCX beside the reserved core instead
        (Intent(), CacheFit.OWN, [9, 41]),
        # a tenant that keeps its CCX alone (own, or a guest vmtune never planned) is not joined by anyone
        (Intent(cache_fit=CacheFit.OWN), CacheFit.PACK, [9, 41]),
        (None, CacheFit.PACK, [9, 41]),
    ],
)
def test_cache_fit_pack_joins_only_packing_neighbours(
    tenant_intent: Intent | None, fit: CacheFit, expected: list[int]
) -> None:
    t = dataclasses.replace(tenant("t", [12, 44]), intent=tenant_intent)
    result = plan("epyc-2ccx-per-node", guest(vcpus=2, memory_gib=1), [t], reserve=FIRST_CORES, cache_fit=fit)
    assert pins(result) == expected


def test_an_even_guest_takes_a_whole_two_thread_core_before_a_lone_thread() -> None:
    """Core 1's sibling (CPU 5) is offline. 2 vCPUs under require take core 2 whole, not CPU 1 plus one
    thread of core 2: that would leave CPU 6 idle, unheld, and half a core for the next guest."""
    host = make_host(nodes=1, cores_per_node=4, threads=2, offline="5")
    intent = Intent(thread_policy=ThreadPolicy.REQUIRE, reserve=CpuSet.parse("0,4"))
    result = plan_guest(host=host, guest=guest(vcpus=2, memory_gib=1), tenants=[], intent=intent)
    assert pins(result) == [2, 6]
