"""The benchmark's kubelet port (bench/kubelet.py) gives kubelet's own answers.

The cases are kubelet's table tests (``cpu_assignment_test.go``: ``TestTakeByTopologyNUMAPacked`` and its
``PreferAlignByUncoreCache`` cases) on the named topologies of ``policy_test.go``, rebuilt here by their
description; the expected sets are kubelet's. The static-policy cases (topology manager hint, reserve,
``full-pcpus-only``) are worked out by hand from ``policy_static.go`` and the topology manager's merge, the
reasoning in each case's comment.
"""

from __future__ import annotations

import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from testutil import REPO

sys.path.insert(0, str(REPO / "bench"))

from kubelet import Accumulator, CpuInfo, Kubelet, KubeTopology, take_by_topology_numa_packed, topology_of

from hosts import host_named
from vmtune.core.ledger.pool import reservation
from vmtune.cpuset import CpuSet


def _topo(layout: dict[int, tuple[int, int, int, int]], *, uncores: int = 0) -> KubeTopology:
    """cpu -> (core, socket, node, uncore); a core's id is its lowest CPU, as kubelet's Discover makes it."""
    first: dict[int, int] = {}
    for cpu, (core, *_rest) in sorted(layout.items()):
        first.setdefault(core, cpu)
    cpus = {c: CpuInfo(core=first[k], socket=s, node=n, uncore=u) for c, (k, s, n, u) in layout.items()}
    sockets = len({s for _, s, _, _ in layout.values()})
    return KubeTopology(cpus=cpus, num_cores=len(first), num_sockets=sockets, num_uncore=uncores)


# topoSingleSocketHT: 8 CPUs, 4 cores, siblings i and i+4
SINGLE_HT = _topo({c: (c % 4, 0, 0, 0) for c in range(8)})
# topoDualSocketHT: 12 CPUs, socket = node = cpu % 2, siblings i and i+6
DUAL_HT = _topo({c: (c % 6, c % 2, c % 2, 0) for c in range(12)})
# topoDualSocketMultiNumaPerSocketHT (dual Xeon Gold 6230, SNC2): 80 CPUs, node = (cpu % 40) // 10
DUAL_SNC = _topo({c: (c % 40, (c % 40) // 20, (c % 40) // 10, 0) for c in range(80)})
# topoUncoreSingleSocketNoSMT (EPYC 7452, NPS1, SMT off): 32 CPUs, 8 uncore caches of 4
UNCORE_1S = _topo({c: (c, 0, 0, c // 4) for c in range(32)}, uncores=8)
# topoUncoreDualSocketNoSMT: 16 CPUs, 2 sockets = 2 nodes, 4 uncore caches of 4
UNCORE_2S = _topo({c: (c, c // 8, c // 8, c // 4) for c in range(16)}, uncores=4)
# topoUncoreSingleSocketMultiNuma: 16 CPUs, 1 socket, 2 nodes, 4 uncore caches of 4
UNCORE_2N = _topo({c: (c, 0, c // 8, c // 4) for c in range(16)}, uncores=4)
# topoUncoreSingleSocketSMT: 16 CPUs, 8 cores (siblings i and i+8), 2 uncore caches
UNCORE_SMT = _topo({c: (c % 8, 0, 0, (c % 8) // 4) for c in range(16)}, uncores=2)

PACKED = [
    ("take one cpu from single socket with HT", SINGLE_HT, "0-7", 1, "0"),
    ("take one cpu from single socket with HT, some cpus are taken", SINGLE_HT, "1,3,5-7", 1, "6"),
    ("take two cpus from single socket with HT", SINGLE_HT, "0-7", 2, "0,4"),
    ("take two cpus from single socket with HT, only one core totally free", SINGLE_HT, "0-3,6", 2, "2,6"),
    ("take a socket of cpus from dual socket with HT", DUAL_HT, "0-11", 6, "0,2,4,6,8,10"),
    ("take one cpu from dual socket with HT - core from Socket 0", DUAL_HT, "1-5,7-11", 1, "2"),
    ("allocate 4 full cores, 3 filling the first NUMA node, 1 from the second", DUAL_HT, "0-11", 8,
     "0-2,4,6-8,10"),
    ("take a socket of cpus from dual socket with multi-numa-per-socket with HT", DUAL_SNC, "0-79", 40,
     "0-19,40-59"),
    ("take a NUMA node of cpus from dual socket with multi-numa-per-socket with HT", DUAL_SNC, "0-79", 20,
     "0-9,40-49"),
    ("take a NUMA node, 1 NUMA node already taken", DUAL_SNC, "10-39,50-79", 20, "10-19,50-59"),
    ("take a socket and a NUMA node", DUAL_SNC, "0-79", 60, "0-29,40-69"),
    ("take a socket and a NUMA node, a core taken", DUAL_SNC, "1-39,41-79", 60, "10-39,50-79"),
    ("allocate 32 full cores, 30 filling the first 3 NUMA nodes, 2 from the fourth", DUAL_SNC, "0-79", 64,
     "0-29,40-69,30,31,70,71"),
]  # fmt: skip

UNCORE = [
    ("take cpus from two full UncoreCaches and partial from a single UncoreCache", UNCORE_1S, "1-15", 10,
     "1,2,4-11"),
    ("take one cpu from dual socket with HT - core from Socket 0", DUAL_HT, "1-5,7-11", 1, "1"),
    ("take first available UncoreCache from first socket", UNCORE_2S, "0-15", 4, "0-3"),
    ("take all available UncoreCache from first socket", UNCORE_2S, "2-15", 6, "2-7"),
    ("take first available UncoreCache from second socket", UNCORE_2S, "8-15", 4, "8-11"),
    ("take first available UncoreCache from available NUMA", UNCORE_2N, "3,4-8,12", 2, "4,5"),
    ("take cpus from best available UncoreCache group of multi uncore cache single socket - SMT enabled",
     UNCORE_SMT, "2-3,10-11,4-7,12-15", 6, "4-6,12-14"),
    ("take cpus from multiple UncoreCache of single socket - SMT enabled", UNCORE_SMT, "1-7,9-15", 10,
     "4-7,12-15,1,9"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "topo", "available", "n", "expected"), PACKED, ids=[c[0] for c in PACKED])
def test_packed_matches_kubelet(case: str, topo: KubeTopology, available: str, n: int, expected: str) -> None:
    got = take_by_topology_numa_packed(topo, CpuSet.parse(available), n)
    assert got is not None and CpuSet(got) == CpuSet.parse(expected), case


@pytest.mark.parametrize(("case", "topo", "available", "n", "expected"), UNCORE, ids=[c[0] for c in UNCORE])
def test_uncore_matches_kubelet(case: str, topo: KubeTopology, available: str, n: int, expected: str) -> None:
    got = take_by_topology_numa_packed(topo, CpuSet.parse(available), n, uncore=True)
    assert got is not None and CpuSet(got) == CpuSet.parse(expected), case


# TestCPUAccumulatorFreeNUMANodes / FreeSocketsAndNUMANodes / FreeCores / FreeCPUs: kubelet's orders
ORDERS = [
    ("single socket HT, 1 NUMA node free", SINGLE_HT, "0-7", "node", [0]),
    ("single socket HT, 0 NUMA Node free", SINGLE_HT, "1-7", "node", []),
    ("dual socket HT, 2 NUMA Node free", DUAL_HT, "0-11", "node", [0, 1]),
    ("dual socket HT, 1 NUMA Node free", DUAL_HT, "0-9,11", "node", [1]),
    ("dual socket HT, 0 NUMA node free", DUAL_HT, "0,2-9,11", "node", []),
    ("dual socket, multi numa per socket, HT, 4 NUMA Node free", DUAL_SNC, "0-79", "node", [0, 1, 2, 3]),
    ("dual socket, multi numa per socket, HT, 3 NUMA node free", DUAL_SNC, "1-79", "node", [1, 2, 3]),
    ("dual socket, multi numa per socket, HT, 2 NUMA node free", DUAL_SNC, "1-9,11-79", "node", [2, 3]),
    ("dual socket, multi numa per socket, HT, 1 NUMA node free", DUAL_SNC, "1-9,11-59,61-79", "node", [3]),
    ("dual socket, multi numa per socket, HT, 1 Socket/3 NUMA node free", DUAL_SNC, "1-79", "socket", [1]),
    ("dual socket, multi numa per socket, HT, 0 Socket/2 NUMA node free", DUAL_SNC, "1-59,61-79", "node",
     [1, 3]),
    ("single socket HT, 3 cores free (1 partially consumed)", SINGLE_HT, "0-6", "core", [0, 1, 2]),
    ("single socket HT, 0 cores free (4 partially consumed)", SINGLE_HT, "0-3", "core", []),
    ("dual socket HT, 6 cores free", DUAL_HT, "0-11", "core", [0, 2, 4, 1, 3, 5]),
    ("dual socket HT, 5 cores free (1 consumed from socket 0)", DUAL_HT, "1-5,7-11", "core", [2, 4, 1, 3, 5]),
    ("dual socket HT, 4 cores free (1 consumed from each socket)", DUAL_HT, "2-5,8-11", "core", [2, 4, 3, 5]),
    ("single socket HT, 8 cpus free", SINGLE_HT, "0-7", "cpu", [0, 4, 1, 5, 2, 6, 3, 7]),
    ("single socket HT, 5 cpus free", SINGLE_HT, "3-7", "cpu", [4, 5, 6, 3, 7]),
    ("dual socket HT, 12 cpus free", DUAL_HT, "0-11", "cpu", [0, 6, 2, 8, 4, 10, 1, 7, 3, 9, 5, 11]),
    ("dual socket HT, 11 cpus free", DUAL_HT, "1-11", "cpu", [6, 2, 8, 4, 10, 1, 7, 3, 9, 5, 11]),
    ("dual socket HT, 10 cpus free", DUAL_HT, "1-5,7-11", "cpu", [2, 8, 4, 10, 1, 7, 3, 9, 5, 11]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "topo", "available", "what", "expected"), ORDERS, ids=[c[0] for c in ORDERS]
)
def test_orders_match_kubelet(
    case: str, topo: KubeTopology, available: str, what: str, expected: list[int]
) -> None:
    acc = Accumulator(topo, CpuSet.parse(available), 0)
    got = acc.sort_cpus_packed() if what == "cpu" else acc.free_of(what)
    assert got == expected, case


def test_too_many_cpus_is_an_error() -> None:
    # "take more cpus than are available from single socket with HT"
    assert take_by_topology_numa_packed(SINGLE_HT, CpuSet.parse("0,2,4,6"), 5) is None


def test_static_policy_takes_the_node_that_holds_the_request() -> None:
    # reserve core 0 (CPUs 0,6: node 0); node 0 then has 4 free CPUs (2,4,8,10), node 1 has 6. Packed alone
    # would start on node 0 (fewest free); the hint for 6 CPUs is node 1 (the only one-node mask that holds
    # them), so all 6 come from node 1.
    kubelet = Kubelet(topo=DUAL_HT, reserved=frozenset({0, 6}))
    assert CpuSet(kubelet.allocate(6) or ()) == CpuSet.parse("1,3,5,7,9,11")
    # 4 more: only node 0 holds them -> 2,4,8,10; then nothing is left for 2 more
    assert CpuSet(kubelet.allocate(4) or ()) == CpuSet.parse("2,4,8,10")
    assert kubelet.allocate(2) is None


def test_static_policy_hint_picks_the_lowest_node_that_fits() -> None:
    # 4 CPUs on an empty 4-node SNC host: every one-node mask holds them; the narrowest is node 0's
    kubelet = Kubelet(topo=DUAL_SNC, reserved=frozenset())
    assert CpuSet(kubelet.allocate(4) or ()) == CpuSet.parse("0,1,40,41")
    # 22 CPUs: no node holds them; the fewest nodes is 2 and the smallest mask is {0, 1}; inside it node 1
    # is wholly free and 20 <= 22, so step 1 takes it whole, then one core from node 0 (the fewest free)
    got = CpuSet(kubelet.allocate(22) or ())
    assert got == CpuSet.parse("2,10-19,42,50-59")


def test_full_pcpus_only_refuses_odd_requests_on_smt_hosts() -> None:
    kubelet = Kubelet(topo=DUAL_HT, reserved=frozenset())
    assert kubelet.allocate(3) is None
    assert kubelet.allocate(4) is not None


def test_offline_sibling_makes_cpus_per_core_one() -> None:
    # kubelet divides online CPUs by cores: dropping CPU 7 (core 1's second thread) gives 11 // 6 = 1,
    # so full-pcpus-only admits an odd request
    layout = {c: (c % 6, c % 2, c % 2, 0) for c in range(12) if c != 7}
    kubelet = Kubelet(topo=_topo(layout), reserved=frozenset())
    assert kubelet.topo.cpus_per_core() == 1
    assert kubelet.allocate(3) is not None


def test_topology_of_a_named_host() -> None:
    host = host_named("epyc-2ccx-per-node")
    topo = topology_of(host)
    assert topo.num_cpus == len(host.online)
    assert topo.num_cores == len(host.cores)
    assert topo.cpus_per_core() == 2
    # NPS4, two CCX (L3) per node: 8 uncore caches of 8 CPUs, each inside one node
    assert topo.num_uncore == 8
    assert all(len({topo.cpus[c].node for c in cpus}) == 1 for cpus in topo.members("uncore").values())


KUBE_HOSTS = (
    "dual-skylake-ht-interleaved",
    "epyc-2ccx-per-node",
    "snc2-xeon",
    "phytium-s2500",
    "offline-cpus",
)


@given(
    name=st.sampled_from(KUBE_HOSTS),
    sizes=st.lists(st.integers(min_value=1, max_value=24), max_size=25),
    uncore=st.booleans(),
)
def test_allocations_are_disjoint_whole_and_outside_the_reserve(
    name: str, sizes: list[int], uncore: bool
) -> None:
    host = host_named(name)
    reserved = frozenset(reservation(host, None).reserved)
    kubelet = Kubelet(topo=topology_of(host), reserved=reserved, uncore=uncore)
    whole_cores = kubelet.topo.cpus_per_core() == max(len(c.cpus) for c in host.cores)
    taken: set[int] = set()
    for n in sizes:
        got = kubelet.allocate(n)
        if got is None:
            continue
        assert len(got) == n
        assert not got & taken and not got & reserved and got <= set(host.online)
        if whole_cores:  # full-pcpus-only keeps its promise when every core has CPUsPerCore threads
            assert all(set(c.cpus) <= got for c in host.cores if got & set(c.cpus))
        taken |= got
