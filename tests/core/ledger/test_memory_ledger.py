"""The memory ledger: what a guest commits (``held_memory``), what a node holds (``memory_book``), and the
planner fitting against it: a stream of guests never overbooks a node, and VT206 never fires on it."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner_hosts import GIB, guest, host_named
from testutil import CORPORA
from vmtune.adapters.sysfs import read_sysfs
from vmtune.core.audit.engine import run_rules
from vmtune.core.guest import GuestSpec, MemNode, MemoryBacking, MemoryDevice, NumaCell
from vmtune.core.intent.model import CpuPolicy, Intent, MemoryMode, PageSize, ThreadPolicy
from vmtune.core.ledger.memory import default_reserve_kib, memory_book
from vmtune.core.ledger.tenant import as_planned, held_memory, others_of
from vmtune.core.plan import Plan
from vmtune.core.planner import plan_guest
from vmtune.core.topology.caps import HostCaps
from vmtune.core.topology.model import Host
from vmtune.cpuset import CpuSet
from vmtune.errors import InfeasibleError
from vmtune.service import apply_domain
from vmtune.xmlmap.guest import read_guest

HOSTS = ("dual-ht-adjacent", "epyc-2ccx-per-node", "snc2-xeon", "offline-cpus", "hybrid-pe")


@cache
def _host(name: str) -> Host:
    return host_named(name)


def test_cells_memnodes_and_dimms_count_on_their_nodes() -> None:
    g = guest(
        memory_gib=22,
        numatune_mode="strict",
        numatune_nodeset=CpuSet.parse("0-1"),
        numa_cells=(
            NumaCell(id=0, cpus=CpuSet.parse("0-1"), memory_kib=15 * GIB),
            NumaCell(id=1, cpus=CpuSet.parse("2-3"), memory_kib=5 * GIB),
        ),
        memnodes=(
            MemNode(cellid=0, mode="strict", nodeset=CpuSet([0])),
            MemNode(cellid=1, mode="strict", nodeset=CpuSet([1])),
        ),
        memory_devices=(MemoryDevice(model="dimm", size_kib=2 * GIB, node=1),),
    )
    held = held_memory(g)
    assert dict(held.nodes) == {0: 15 * GIB, 1: 7 * GIB}
    assert held.floating_kib == 0


def test_hugepages_count_per_size_and_loose_memory_floats() -> None:
    huge = guest(memory_gib=4, memory_backing=MemoryBacking(hugepages=True, page_size_kib=GIB),
                 numatune_mode="interleave", numatune_nodeset=CpuSet.parse("0-1"))  # fmt: skip
    assert dict(held_memory(huge).pages) == {(0, GIB): 2, (1, GIB): 2}
    for loose in (guest(memory_gib=4), guest(memory_gib=4, numatune_mode="preferred",
                                             numatune_nodeset=CpuSet([0]))):  # fmt: skip
        held = held_memory(loose)
        assert (dict(held.nodes), held.floating_kib) == ({}, 4 * GIB)


def test_reserve_default_is_a_fraction_with_a_floor() -> None:
    assert default_reserve_kib(192 * GIB) == 192 * GIB // 20
    assert default_reserve_kib(8 * GIB) == GIB
    assert default_reserve_kib(0) == 0


@pytest.mark.parametrize(
    ("mode", "nodeset"), [("interleave", "0-1"), ("preferred", "1"), ("restrictive", "0-1")]
)
def test_a_binding_chosen_by_the_user_is_kept(mode: str, nodeset: str) -> None:
    host = _host("dual-ht-adjacent")
    g = guest(numatune_mode=mode, numatune_nodeset=CpuSet.parse(nodeset))
    plan = plan_guest(host=host, guest=g, tenants=(), intent=Intent())
    assert plan.numatune is not None
    assert (plan.numatune.mode, str(plan.numatune.nodeset)) == (mode, nodeset)
    assert any(f"kept the guest's own binding: mode {mode}" in n.message for n in plan.notes)
    again = plan_guest(host=host, guest=as_planned(g, plan), tenants=(), intent=plan.intent or Intent())
    assert again.numatune == plan.numatune
    forced = plan_guest(host=host, guest=g, tenants=(), intent=Intent(memory_mode=MemoryMode.STRICT))
    assert forced.numatune is not None and forced.numatune.mode == "strict"


GUESTS = st.lists(st.tuples(st.integers(1, 8), st.integers(1, 12), st.booleans()), min_size=1, max_size=12)


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(HOSTS), GUESTS)
def test_a_stream_of_guests_never_overbooks_a_node(name: str, asks: list[tuple[int, int, bool]]) -> None:
    host = _host(name)
    tenants: list[GuestSpec] = []
    for i, (vcpus, gib, huge) in enumerate(asks):
        g = guest(f"g{i}", vcpus=vcpus, memory_gib=gib)
        intent = Intent(hugepages=PageSize.parse("2M")) if huge else Intent()
        try:
            plan = plan_guest(host=host, guest=g, tenants=tenants, intent=intent)
        except InfeasibleError:
            continue
        tenants.append(as_planned(g, plan))
        book = memory_book(host, tenants, None)
        assert book.over() == []
    found = run_rules(host, tenants, select=frozenset({"VT206"}))
    assert found == ()
    # re-planning a tenant among the others keeps its memory where it is
    for t in tenants[:3]:
        again = plan_guest(host=host, guest=t, tenants=others_of(t, tenants), intent=t.intent or Intent())
        assert held_memory(as_planned(t, again)) == held_memory(t)


def test_hugepage_note_counts_the_cells_written() -> None:
    plan = plan_guest(host=_host("snc2-xeon"), guest=guest(vcpus=24, memory_gib=6), tenants=(),
                      intent=Intent(hugepages=PageSize.parse("2M")))  # fmt: skip
    assert plan.cpu is not None
    # 16 + 8 vCPUs: pack fills node 0's 8 isolated cores and leaves node 1 6 whole cores, not 2 + 4
    assert [c.memory_kib for c in plan.cpu.numa_cells or ()] == [4 * GIB, 2 * GIB]
    assert any("node 0 needs 2048, 2048 free, node 1 needs 1024, 2048 free" in n.message for n in plan.notes)


def test_a_hugepage_shortfall_does_not_blame_the_thread_policy() -> None:
    intent = Intent(hugepages=PageSize.parse("2M"), thread_policy=ThreadPolicy.ISOLATE)
    with pytest.raises(InfeasibleError) as err:
        plan_guest(
            host=_host("dual-ht-adjacent"), guest=guest(vcpus=2, memory_gib=6), tenants=(), intent=intent
        )
    assert "x 2 MiB hugepages" in str(err.value)
    assert "--thread-policy prefer" not in str(err.value)


FAKEMEM = "hwloc-fakememinitiators-1np2c+1npp+gi"


@cache
def _corpus(name: str) -> Host:
    root = CORPORA / "sysfs" / name
    if not root.is_dir():
        pytest.skip(f"corpus {root} not found")
    return read_sysfs(root)


@pytest.mark.parametrize(
    ("host", "vcpus", "numatune", "memnodes"),
    [
        # nodes 0-3 have CPUs and MemTotal 0; their nearest memory (SLIT 11) is on 5, 8, 6, 9
        ("corpus", 1, "5", ()),
        ("corpus", 3, "5-6,8", ("5", "8", "6")),
        # node 3 has CPUs and no memory, node 2 (memory only) is its nearest
        ("memoryless-node", 1, "0", ()),
    ],
)
def test_memoryless_cpu_nodes_bind_to_the_nearest_memory(
    host: str, vcpus: int, numatune: str, memnodes: tuple[str, ...]
) -> None:
    h = _corpus(FAKEMEM) if host == "corpus" else _host(host)
    plan = plan_guest(host=h, guest=guest(vcpus=vcpus, memory_gib=2), tenants=(), intent=Intent())
    assert plan.numatune is not None
    assert str(plan.numatune.nodeset) == numatune
    assert tuple(str(m.nodeset) for m in plan.numatune.memnodes) == memnodes
    assert run_rules(h, (as_planned(guest(vcpus=vcpus, memory_gib=2), plan),)) == ()


def test_node_less_cpus_keep_reserve_and_emulator_on_the_guests_socket() -> None:
    # node0/ is missing: CPUs 4,6,...,20 (socket 0) are in no node and counted in node 1 (socket 1)
    host = _corpus("hwloc-offline-cpu0-node0")
    socket_of = {cpu: s.index for s in host.sockets for cpu in s.cpus}
    tenants: list[GuestSpec] = []
    for i in range(4):
        g = guest(f"g{i}", vcpus=3, memory_gib=4)
        plan = plan_guest(host=host, guest=g, tenants=tenants, intent=Intent())
        assert plan.vcpupins is not None and plan.emulatorpin is not None
        vcpu_sockets = {socket_of[p.cpus.first()] for p in plan.vcpupins}
        assert vcpu_sockets == {socket_of[c] for c in plan.emulatorpin}, (i, plan.vcpupins, plan.emulatorpin)
        tenants.append(as_planned(g, plan))


def test_a_shared_pool_on_a_memoryless_node_binds_its_memory_home() -> None:
    host = _corpus(FAKEMEM)
    intent = Intent(cpu_policy=CpuPolicy.SHARED)
    plan = plan_guest(host=host, guest=guest(vcpus=1, memory_gib=2), tenants=(), intent=intent)
    assert plan.numatune is not None
    assert all(n.mem_total_kib for n in host.nodes if n.id in plan.numatune.nodeset)


def test_exit_3_names_who_holds_the_memory() -> None:
    host = _host("dual-ht-adjacent")  # 16 GiB nodes: 13 GiB for guests after the 2M pools and the reserve
    tenants = [
        guest("a", vcpus=1, memory_gib=12, numatune_mode="strict", numatune_nodeset=CpuSet([0])),
        guest("b", vcpus=1, memory_gib=12, numatune_mode="strict", numatune_nodeset=CpuSet([1])),
        guest("c", vcpus=1, memory_gib=1),
    ]
    with pytest.raises(InfeasibleError) as err:
        plan_guest(host=host, guest=guest(vcpus=1, memory_gib=2), tenants=tenants, intent=Intent())
    text = str(err.value)
    # each node has 1 GiB left, and the host as a whole 13 + 13 - 12 - 12 - 1 (floating) = 1 GiB
    assert "node 0 needs 2 GiB, 1 GiB available; node 1 needs 2 GiB, 1 GiB available" in text
    assert "node 0 holds 13 GiB for guests (reserve 1 GiB), held by a 12 GiB; node 1" in text
    assert text.endswith("; 1 GiB of c floats over the host (no binding)")


@dataclass
class _Conn:
    """A libvirt connection with defined, stopped domains (``service.Libvirt``)."""

    domains: dict[str, str]
    uri: str = "test:///memory"

    def host(self) -> Host:
        return _host("dual-ht-adjacent")

    def caps(self, guest: GuestSpec | None = None) -> HostCaps | None:
        return None

    def tenants(self) -> tuple[GuestSpec, ...]:
        return tuple(read_guest(x, source=f"libvirt:{n}") for n, x in sorted(self.domains.items()))

    def domain_xml(self, name: str, *, inactive: bool) -> str:
        return self.domains[name]

    def define_validated(self, name: str, xml: str) -> None:
        self.domains[name] = xml

    def restore_definition(self, name: str, xml: str) -> None:
        self.domains[name] = xml

    def is_running(self, name: str) -> bool:
        return False

    def repin(self, name: str, plan: Plan) -> tuple[str, ...]:
        return ()


def _domain(name: str, gib: int, node: int | None) -> str:
    bind = f"<numatune><memory mode='strict' nodeset='{node}'/></numatune>" if node is not None else ""
    return (f"<domain type='kvm'><name>{name}</name><memory unit='GiB'>{gib}</memory><vcpu>1</vcpu>{bind}"
            "<os><type arch='x86_64'>hvm</type></os></domain>")  # fmt: skip


def test_connect_counts_a_defined_but_stopped_guests_binding() -> None:
    # 13 GiB per node for guests: the stopped a and b hold 12 GiB of each, so 4 GiB fits nowhere
    conn = _Conn({"a": _domain("a", 12, 0), "b": _domain("b", 12, 1), "new": _domain("new", 4, None)})
    with pytest.raises(InfeasibleError, match="held by a 12 GiB"):
        apply_domain(conn, "new", lambda stored: stored or Intent())
    conn.domains["b"] = _domain("b", 8, 1)
    applied = apply_domain(conn, "new", lambda stored: stored or Intent())
    assert applied.plan.numatune is not None and str(applied.plan.numatune.nodeset) == "1"
