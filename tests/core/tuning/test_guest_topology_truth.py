"""The guest topology tells the truth about the host siblings its vCPUs sit on: the planner and VT109
share one rule (``threads_per_vcpu_core``), judged here also by a referee written from QEMU's numbering."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from hosts import host_named, host_of
from sysfsgen import HostSpec
from vmtune.adapters.sysfs import read_sysfs
from vmtune.core.audit.engine import run_rules
from vmtune.core.guest import GuestSpec
from vmtune.core.intent.model import Intent, Profile, ThreadPolicy
from vmtune.core.plan import Level, Plan
from vmtune.core.planner import plan_guest
from vmtune.core.topology.model import Host
from vmtune.core.tuning.guesttopo import round_to_cores, threads_per_vcpu_core
from vmtune.cpuset import CpuSet
from vmtune.errors import InfeasibleError
from vmtune.xmlmap.apply import apply_plan
from vmtune.xmlmap.guest import read_guest

SMT = ("dual-skylake-ht-interleaved", "dual-ht-adjacent", "epyc-2ccx-per-node", "snc2-xeon", "big-256")
NO_SMT = ("phytium-s2500",)
INTENTS = (Intent(), Intent(profiles=(Profile.LATENCY,)), Intent(thread_policy=ThreadPolicy.ISOLATE))


def _domain(vcpus: int, topology: str = "") -> etree._ElementTree:
    return etree.ElementTree(
        etree.fromstring(
            f"<domain type='kvm'><name>g</name><memory unit='KiB'>{vcpus * 262144}</memory>"
            f"<vcpu>{vcpus}</vcpu><os><type arch='x86_64'>hvm</type></os>{topology}</domain>"
        )
    )


def _truthful(host: Host, guest: GuestSpec) -> bool:
    """QEMU numbers threads innermost: with threads=t, vCPUs a and b share a host core exactly when
    a // t == b // t."""
    t = guest.topology.threads if guest.topology is not None else 1
    core = {cpu: c.index for c in host.cores for cpu in c.cpus}
    cores = [core[p.cpus.first()] for p in sorted(guest.vcpupins, key=lambda p: p.vcpu)]
    return all((cores[a] == cores[b]) == (a // t == b // t) for a in range(len(cores)) for b in range(a))


def _judge(host: Host, doc: etree._ElementTree, plan: Plan) -> tuple[GuestSpec, bool]:
    guest = read_guest(apply_plan(doc, plan), source="g.xml")
    vt109 = run_rules(host, (guest,), select=frozenset({"VT109"}))
    assert bool(vt109) == (not _truthful(host, guest)), vt109
    return guest, bool(vt109)


@pytest.mark.parametrize("host_name", SMT + NO_SMT)
def test_fresh_and_replanned_guests_of_1_to_17_vcpus_tell_the_truth(host_name: str) -> None:
    host = host_named(host_name)
    for vcpus in range(1, 18):
        for intent in INTENTS:
            doc = _domain(vcpus)
            try:
                plan = plan_guest(host=host, guest=read_guest(doc, source="g.xml"), tenants=(), intent=intent)
            except InfeasibleError:
                assert intent.thread_policy is ThreadPolicy.ISOLATE or intent.profiles != (Profile.BALANCED,)
                continue
            guest, found = _judge(host, doc, plan)
            assert not found, (vcpus, intent)
            assert guest.current_vcpus in (None, vcpus)  # the guest runs the vCPUs it asked for
            if plan.vcpu_slots is not None:
                assert plan.vcpu_slots == round_to_cores(vcpus, 2) != vcpus and host_name in SMT
            again = plan_guest(host=host, guest=guest, tenants=(), intent=intent)
            assert again.vcpupins == plan.vcpupins  # the kept shape keeps its true pins
            assert not _judge(host, apply_plan(doc, plan), again)[1]


@pytest.mark.parametrize("host_name", SMT)
@pytest.mark.parametrize("threads", [1, 2])
def test_the_hook_pins_as_the_kept_topology_says(host_name: str, threads: int) -> None:
    """An incoming guest keeps its topology (its ABI): its pins follow it where whole cores allow."""
    host = host_named(host_name)
    for vcpus in range(threads, 18, threads):
        topology = f"<cpu><topology sockets='1' cores='{vcpus // threads}' threads='{threads}'/></cpu>"
        for intent in INTENTS:
            doc = _domain(vcpus, topology)
            try:
                plan = plan_guest(host=host, guest=read_guest(doc, source="g.xml"), tenants=(), intent=intent,
                                  keep_abi=True)  # fmt: skip
            except InfeasibleError:
                assert intent.thread_policy is ThreadPolicy.ISOLATE or intent.profiles != (Profile.BALANCED,)
                continue
            assert plan.cpu is None and plan.vcpu_slots is None  # nothing the guest sees changes
            _, found = _judge(host, doc, plan)
            warned = any(n.level is Level.WARNING and n.topic == "topology" for n in plan.notes)
            assert found == warned, (vcpus, intent)
            if vcpus <= 8:  # room for whole cores on every one of these hosts
                assert not found, (vcpus, intent)


def test_the_rule_names_uneven_pins_untellable() -> None:
    host = host_named("dual-skylake-ht-interleaved")  # CPU n and n+20 are siblings
    assert threads_per_vcpu_core(host, [1, 21, 2, 22]) == 2
    assert threads_per_vcpu_core(host, [1, 2, 3]) == 1
    assert threads_per_vcpu_core(host, [1, 21, 2]) is None  # 2+1: no topology is true
    assert threads_per_vcpu_core(host, [1, 2, 21, 22]) is None  # siblings not consecutive
    assert [round_to_cores(n, 2) for n in (1, 2, 3, 5, 17)] == [1, 2, 4, 6, 18]
    assert round_to_cores(5, 1) == 5


# hosts whose free cores mix widths: single-thread E-cores next to 2-thread P-cores, or a core whose sibling
# is offline; 2 sockets x 16 cores, CPU n and n+32 siblings, isolcpus leaving cores 0-1 of each socket out
ISOL_OFFLINE = HostSpec(name="isol-offline", sockets=2, cores_per_node=16, threads_per_core=2,
                        sibling_numbering="interleaved", l3_cores=16, offline=(30, 45, 62), vendor="Intel",
                        isolated=(*range(2, 16), *range(18, 32), *range(34, 48), *range(50, 64)))  # fmt: skip
RAPTOR = "hwloc-20em64t-hybrid-1p6c2t+2ca4co1t"  # CPUs 0-11: 6 P-cores SMT2, 12-19: E-cores, 12-15 reserved
P_CORES, E_CORES = CpuSet.parse("0-11"), CpuSet.parse("12-19")


def _named(name: str, vcpus: int) -> etree._ElementTree:
    return etree.ElementTree(
        etree.fromstring(
            f"<domain type='kvm'><name>{name}</name><memory unit='KiB'>{vcpus * 131072}</memory>"
            f"<vcpu>{vcpus}</vcpu><os><type arch='x86_64'>hvm</type></os></domain>"
        )
    )


def _require_stream(host: Host, sizes: list[int]) -> list[GuestSpec | None]:
    """Each size planned with thread policy require next to the guests before it (None: refused); every
    placed guest passes the QEMU-numbering referee and VT109 stays silent on all of them together."""
    tenants: list[GuestSpec] = []
    out: list[GuestSpec | None] = []
    for i, vcpus in enumerate(sizes):
        doc = _named(f"g{i}", vcpus)
        try:
            plan = plan_guest(host=host, guest=read_guest(doc, source=f"g{i}.xml"), tenants=tenants,
                              intent=Intent(thread_policy=ThreadPolicy.REQUIRE))  # fmt: skip
        except InfeasibleError as e:
            assert "whole cores" in str(e)
            out.append(None)
            continue
        placed = read_guest(apply_plan(doc, plan), source=f"g{i}.xml")
        assert _truthful(host, placed), (i, vcpus, placed.vcpupins)
        tenants.append(placed)
        out.append(placed)
    assert not run_rules(host, tenants, select=frozenset({"VT109"}))
    return out


def _cpus(guest: GuestSpec) -> CpuSet:
    return CpuSet(p.cpus.first() for p in guest.vcpupins)


@pytest.mark.parametrize(
    ("sizes", "refused"),
    [
        # 2 on E-cores, 6 on P-cores; then 12 does not fit; 8 would need 3 free P-cores + 2 E-cores
        ([2, 6, 12, 8], {2, 3}),
        ([16], {0}),  # the whole pool: 6 P-cores + 4 E-cores, no width fits 16 vCPUs
        ([8, 8], {1}),  # 4 P-cores; then 2 P-cores + 4 E-cores left
        ([8, 4, 4], set()),  # 4 P-cores, 2 P-cores, then the 4 free E-cores at threads=1
    ],
)
def test_raptor_lake_guests_never_span_p_and_e_cores(
    corpora: Path, sizes: list[int], refused: set[int]
) -> None:
    host = read_sysfs(corpora / "sysfs" / RAPTOR)
    placed = _require_stream(host, sizes)
    assert {i for i, g in enumerate(placed) if g is None} == refused
    for guest in filter(None, placed):
        cpus = _cpus(guest)
        assert cpus.issubset(P_CORES) or cpus.issubset(E_CORES), cpus
        assert guest.topology is not None and guest.topology.threads == (2 if cpus.issubset(P_CORES) else 1)


@pytest.mark.parametrize(
    "sizes",
    [
        [2, 4, 6, 8, 32],
        [12, 8, 2, 2, 4, 8, 12],
        [6, 8, 8, 2, 2, 8, 8, 4, 8, 2, 8, 8, 8, 32, 8, 8, 4],
    ],
)
def test_a_core_with_an_offline_sibling_is_never_mixed_with_whole_cores(sizes: list[int]) -> None:
    host = host_of(ISOL_OFFLINE)
    lone = CpuSet([13])  # CPU 45, its sibling, is offline
    placed = _require_stream(host, sizes)
    for guest in filter(None, placed):
        if guest.vcpus > 1 and lone.issubset(_cpus(guest)):
            assert guest.topology is not None and guest.topology.threads == 1
    # the 32-vCPU guest after 20 vCPUs fits the 16 whole cores left, without CPU 13
    if sizes[:5] == [2, 4, 6, 8, 32]:
        wide = placed[4]
        assert wide is not None and wide.topology is not None and wide.topology.threads == 2
        assert not lone & _cpus(wide)
