"""Placement on the host shapes where the core kind, the default reserve or the lack of cache data decide:
a 2-socket Phytium S2500 (4-core L2 clusters), the corpus Raptor Lake and DGX GB10 hybrids, s390 LPARs.

Expectations come from each host's documented layout (which CPUs are P-cores, which share an L2, which
sit on one socket), never from a run of the planner.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hosts import host_of
from planner_hosts import as_tenant, guest
from sysfsgen import CoreKind, HostSpec
from vmtune.adapters.sysfs import read_sysfs
from vmtune.core.guest import GuestSpec
from vmtune.core.intent.model import CoreKind as Kind
from vmtune.core.intent.model import Intent, Profile
from vmtune.core.plan import Plan
from vmtune.core.planner import plan_guest
from vmtune.core.topology.model import Host
from vmtune.cpuset import CpuSet
from vmtune.errors import InfeasibleError

RAPTOR = "hwloc-20em64t-hybrid-1p6c2t+2ca4co1t"
P_CORES, E_CORES = CpuSet.parse("0-11"), CpuSet.parse("12-19")


def cpus_of(plan: Plan) -> CpuSet:
    return CpuSet(p.cpus.first() for p in plan.vcpupins or ())


def stream(host: Host, vcpus: int, intent: Intent | None = None, limit: int = 200) -> list[CpuSet]:
    """Place ``vcpus``-vCPU guests one after another until the host refuses one: each guest's CPUs."""
    tenants: list[GuestSpec] = []
    out: list[CpuSet] = []
    for i in range(limit):
        spec = guest(name=f"g{i}", vcpus=vcpus, memory_gib=0.25)
        try:
            plan = plan_guest(host=host, guest=spec, tenants=tenants, intent=intent or Intent())
        except InfeasibleError:
            break
        out.append(cpus_of(plan))
        tenants.append(as_tenant(plan, spec))
    return out


def l2_groups(host: Host, cpus: CpuSet) -> int:
    return len({host.cpu(c).caches[2] for c in cpus})  # type: ignore[union-attr]


def test_s2500_two_sockets_fit_30_four_vcpu_guests_none_split() -> None:
    # 2 sockets x 8 nodes x 8 cores, L2 clusters of 4: 32 clusters, one per socket reserved
    host = host_of(HostSpec(name="s2500x2", arch="aarch64", sockets=2, nodes_per_socket=8, cores_per_node=8,
                            kinds=(CoreKind(cores=8, l2_cores=4, l2_kib=2048, capacity=1024),)))  # fmt: skip
    placed = stream(host, 4)
    assert len(placed) == 30
    assert all(l2_groups(host, cpus) == 1 and len(host.nodes_of(cpus)) == 1 for cpus in placed)


@pytest.fixture(scope="module")
def raptor(corpora: Path) -> Host:
    return read_sysfs(corpora / "sysfs" / RAPTOR)


@pytest.mark.parametrize(
    ("intent", "kind"),
    [
        (Intent(core_kind=Kind.BIG), P_CORES),
        (Intent(profiles=(Profile.LATENCY,)), P_CORES),
        (Intent(core_kind=Kind.LITTLE), E_CORES),
    ],
)
def test_raptor_lake_kinds(raptor: Host, intent: Intent, kind: CpuSet) -> None:
    plan = plan_guest(host=raptor, guest=guest(vcpus=4, memory_gib=1), tenants=[], intent=intent)
    assert cpus_of(plan).issubset(kind)
    assert not any("alike" in n.message for n in plan.notes)
    assert any("layout: SMT cores with a private L2 are big" in n.message for n in plan.notes)


def test_raptor_lake_little_guests_fill_the_e_cluster_the_reserve_leaves(raptor: Host) -> None:
    placed = stream(raptor, 4, Intent(core_kind=Kind.LITTLE))
    assert placed == [CpuSet.parse("16-19")]  # 12-15 is the default reserve


def test_gb10_big_cores_all_usable(corpora: Path) -> None:
    # Cortex-X925 cores 5-9 and 15-19 (capacities 997-1024): ten big cores for --core-kind big
    host = read_sysfs(corpora / "sysfs" / "hwloc-nvidia-dgx-gb10")
    plan = plan_guest(
        host=host, guest=guest(vcpus=10, memory_gib=1), tenants=[], intent=Intent(core_kind=Kind.BIG)
    )
    assert cpus_of(plan) == CpuSet.parse("5-9,15-19")
    two = stream(host, 5, Intent(core_kind=Kind.BIG))
    assert sorted(map(str, two)) == ["15-19", "5-9"]  # one per cluster, each within one L3


@pytest.mark.parametrize("vcpus", [2, 3, 4])
def test_s390_guests_stay_on_one_socket_while_one_holds_them(corpora: Path, vcpus: int) -> None:
    # s390-lpar: no cache data; sockets (core_siblings) 1-2 | 3-5 | 8-10 | 11-14 | 15 | 16-18 | 19
    host = read_sysfs(corpora / "sysfs" / "utillinux-s390-lpar")
    sockets = [s.cpus for s in host.sockets]
    free = host.online - CpuSet.parse("15")  # the default reserve: the first lone-core socket
    for cpus in stream(host, vcpus):
        fits_one = any(len(s & free) >= vcpus for s in sockets)
        spanned = sum(1 for s in sockets if not s.isdisjoint(cpus))
        assert spanned == 1 or not fits_one, (str(cpus), str(free))
        free = free - cpus
