"""`vmtune host --map` (core.ownership) and the planner's ledger (core.ledger) agree on who owns each CPU;
the one rule for "the same guest" and for "the CPUs a guest holds" (core.ledger.tenant)."""

from __future__ import annotations

from functools import cache

import pytest
from hypothesis import given
from hypothesis import strategies as st

from planner_hosts import as_tenant, guest, host_named, tenant
from vmtune.core.audit.engine import claimed_cpus
from vmtune.core.guest import GuestSpec, IOThreadPin, VcpuPin
from vmtune.core.intent.model import CpuPolicy, Intent, ThreadPolicy
from vmtune.core.ledger.ownership import Owner, cpu_owners
from vmtune.core.ledger.pool import build_ledger
from vmtune.core.ledger.tenant import as_planned, held_cpus, others_of, same_guest
from vmtune.core.planner import plan_guest
from vmtune.core.topology.model import Host
from vmtune.cpuset import CpuSet

HOSTS = ("dual-ht-adjacent", "dual-skylake-ht-interleaved", "epyc-2ccx-per-node", "snc2-xeon", "offline-cpus")


@cache
def _host(name: str) -> Host:
    return host_named(name)


def _owned(owners: dict[int, str], *kinds: Owner) -> CpuSet:
    return CpuSet(cpu for cpu, owner in owners.items() if owner in kinds)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Host, list[GuestSpec], CpuSet | None]:
    host = _host(draw(st.sampled_from(HOSTS)))
    online = sorted(host.online)
    cpus = st.lists(st.sampled_from(online), min_size=1, max_size=8, unique=True)
    tenants = []
    for i in range(draw(st.integers(0, 3))):
        t = tenant(f"t{i}", draw(cpus), emulator=draw(st.one_of(st.just([]), cpus)))
        if draw(st.booleans()):
            t = GuestSpec(name=t.name, source=t.source, vcpus=t.vcpus, vcpupins=t.vcpupins,
                          emulatorpin=t.emulatorpin, vcpu_cpuset=CpuSet(draw(cpus)))  # fmt: skip
        tenants.append(t)
    reserve = draw(st.one_of(st.none(), cpus.map(CpuSet)))
    return host, tenants, reserve


@given(scenarios())
def test_map_free_is_the_ledger_free_pool(scenario: tuple[Host, list[GuestSpec], CpuSet | None]) -> None:
    host, tenants, reserve = scenario
    ledger = build_ledger(host=host, guest=guest("new"), tenants=tenants, reserve=reserve)
    owners = dict(cpu_owners(host, tenants, reserve))
    # the CPUs the map shows free (or isolated and unused) are exactly where the planner may put a vCPU
    assert _owned(owners, Owner.FREE, Owner.ISOLATED) == ledger.free
    assert _owned(owners, Owner.RESERVED).issubset(ledger.reserved)
    assert _owned(owners, Owner.OFFLINE) == host.offline
    tenant_owned = CpuSet(c for c, o in owners.items() if o not in set(Owner))
    assert tenant_owned.issubset(ledger.taken | ledger.reserved)


def test_isolate_siblings_and_shared_emulators() -> None:
    """An isolate guest's empty siblings are its own on the map and in the ledger; share emulators on the
    default reserve leave those CPUs reserved, not owned by (or colliding between) tenants."""
    host = _host("dual-ht-adjacent")  # siblings 2k, 2k+1; default reserve 0-1 (node 0) and 16-17 (node 1)
    iso = guest("iso", vcpus=4, memory_gib=1)
    iso_plan = plan_guest(host=host, guest=iso, tenants=[], intent=Intent(thread_policy=ThreadPolicy.ISOLATE))
    first = as_tenant(iso_plan, iso)
    assert first.vcpu_cpus == CpuSet([2, 4, 6, 8]) and first.vcpu_cpuset == CpuSet.parse("2-9")
    second = tenant("web", [10, 11], emulator=[0, 1])
    assert first.emulatorpin == CpuSet.parse("0-1")  # both share node 0's reserve (--emulator share)
    owners = cpu_owners(host, [first, second])
    assert _owned(dict(owners), Owner.RESERVED) == CpuSet.parse("0-1,16-17")
    assert [owners[c] for c in range(2, 10)] == ["iso"] * 8
    assert owners[10] == owners[11] == "web"
    ledger = build_ledger(host=host, guest=guest("new"), tenants=[first, second], reserve=None)
    assert CpuSet.parse("3,5,7,9").issubset(ledger.taken)
    assert _owned(dict(owners), Owner.FREE) == ledger.free


# -- one tenant ledger: same_guest and held_cpus ------------------------------------------------------------

UUID_A = "7b3c5a2e-0000-4000-8000-00000000000a"
UUID_B = "7b3c5a2e-0000-4000-8000-00000000000b"


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        (("web", UUID_A), ("web", UUID_A.upper()), True),  # UUIDs compare case-insensitively
        (("web", UUID_A), ("db", UUID_A), True),  # a renamed guest is still itself
        (("web", UUID_A), ("web", UUID_B), False),  # two UUIDs decide, whatever the names
        (("web", UUID_A), ("web", None), True),  # one UUID missing: the name decides
        (("web", None), ("web", None), True),
        (("web", None), ("db", None), False),
        (("", None), ("", None), False),  # nameless documents are never the same guest
    ],
)
def test_same_guest(a: tuple[str, str | None], b: tuple[str, str | None], same: bool) -> None:
    left = GuestSpec(name=a[0], source="a.xml", uuid=a[1])
    right = GuestSpec(name=b[0], source="b.xml", uuid=b[1])
    assert same_guest(left, right) is same
    assert same_guest(right, left) is same
    assert (others_of(left, [right]) == []) is same


PIN = {0: "2", 1: "3"}


@pytest.mark.parametrize(
    ("kw", "cpus", "vcpu_side", "shared"),
    [
        ({}, "", "", False),  # floating: holds nothing
        ({"vcpu_cpuset": CpuSet.parse("4-7")}, "4-7", "4-7", False),  # floating inside a cpuset
        ({"vcpupins": (VcpuPin(vcpu=0, cpus=CpuSet([2])),), "emulatorpin": CpuSet([0])}, "0,2", "2", False),
        # an isolate plan keeps the idle siblings of its cores in the cpuset
        ({"vcpupins": (VcpuPin(vcpu=0, cpus=CpuSet([2])),), "vcpu_cpuset": CpuSet.parse("2-3")}, "2-3", "2-3",
         False),
        ({"iothreadpins": (IOThreadPin(iothread=1, cpus=CpuSet([9])),)}, "9", "", False),
        ({"vcpu_cpuset": CpuSet.parse("4-7"), "intent": Intent(cpu_policy=CpuPolicy.SHARED)}, "4-7", "4-7",
         True),
    ],
)  # fmt: skip
def test_held_cpus(kw: dict[str, object], cpus: str, vcpu_side: str, shared: bool) -> None:
    held = held_cpus(GuestSpec(name="g", source="g.xml", vcpus=2, **kw))  # type: ignore[arg-type]
    assert held.cpus == CpuSet.parse(cpus) if cpus else not held.cpus
    assert held.vcpu_side == (CpuSet.parse(vcpu_side) if vcpu_side else CpuSet())
    assert held.shared is shared


@given(scenarios(), st.sets(st.integers(0, 63), max_size=6))
def test_held_cpus_own_is_what_the_map_and_the_audit_see(
    scenario: tuple[Host, list[GuestSpec], CpuSet | None], housekeeping_ids: set[int]
) -> None:
    """``own`` only ever drops housekeeping CPUs reached by helper threads; the audit's claimed CPUs of a
    dedicated guest are its vCPU pins."""
    host, tenants, _ = scenario
    housekeeping = CpuSet(housekeeping_ids)
    for t in tenants:
        held = held_cpus(t)
        assert held.vcpu_side.issubset(held.own(housekeeping))
        assert held.cpus - held.own(housekeeping) == (held.threads & housekeeping) - held.vcpu_side
        assert held.cpus == held.vcpu_side | held.threads
        assert claimed_cpus(t, host) in (held.vcpu_pins, CpuSet())
        assert others_of(t, tenants) == [o for o in tenants if o.name != t.name]


def test_as_planned_is_the_tenant_the_next_document_sees() -> None:
    host = _host("dual-ht-adjacent")
    first = guest("a", vcpus=4, memory_gib=1)
    plan = plan_guest(host=host, guest=first, tenants=[], intent=Intent())
    planned = as_planned(first, plan)
    assert held_cpus(planned).cpus == held_cpus(as_tenant(plan, first)).cpus
    assert planned.intent == plan.intent and planned.name == "a"
