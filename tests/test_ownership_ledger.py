"""`vmtune host --map` (core.ownership) and the planner's ledger (core.ledger) agree on who owns each CPU."""

from __future__ import annotations

from functools import cache

from hypothesis import given
from hypothesis import strategies as st

from planner_hosts import as_tenant, guest, host_named, tenant
from vmtune.core.guest import GuestSpec
from vmtune.core.intent.model import Intent, ThreadPolicy
from vmtune.core.ledger.ownership import Owner, cpu_owners
from vmtune.core.ledger.pool import build_ledger
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
