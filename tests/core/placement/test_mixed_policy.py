"""``--cpu-policy mixed --dedicated-mask SPEC``: masked vCPUs own whole cores, the others float over the
shared pool of the same node; ``check`` treats only the dedicated vCPUs as dedicated."""

from __future__ import annotations

import pytest
from lxml import etree

from hosts import host_named
from testutil import CORPORA, DATA
from vmtune.cli.app import main
from vmtune.core.audit.engine import claimed_cpus, run_rules
from vmtune.core.guest import GuestSpec, VcpuPin
from vmtune.core.intent.model import CpuPolicy, Intent, Profile, VcpuMask
from vmtune.core.ledger.ownership import clashes, shared_cores
from vmtune.core.ledger.pool import default_reserve
from vmtune.core.ledger.tenant import held_cpus
from vmtune.core.plan import Plan
from vmtune.core.planner import plan_guest
from vmtune.core.topology.model import Host
from vmtune.cpuset import CpuSet
from vmtune.errors import InputError
from vmtune.xmlmap.apply import apply_plan
from vmtune.xmlmap.guest import read_guest

HOSTS = ("dual-skylake-ht-interleaved", "dual-ht-adjacent", "epyc-2ccx-per-node", "phytium-s2500", "big-256")


def _mixed(mask: str, *profiles: Profile, **kw: object) -> Intent:
    return Intent(profiles=profiles or (Profile.BALANCED,), cpu_policy=CpuPolicy.MIXED,
                  dedicated_mask=VcpuMask.parse(mask), **kw)  # type: ignore[arg-type]  # fmt: skip


def _domain(name: str, vcpus: int) -> etree._ElementTree:
    return etree.ElementTree(
        etree.fromstring(
            f"<domain type='kvm'><name>{name}</name><memory unit='KiB'>{vcpus * 262144}</memory>"
            f"<vcpu>{vcpus}</vcpu><os><type arch='x86_64'>hvm</type></os></domain>"
        )
    )


def _planned(host: Host, name: str, vcpus: int, intent: Intent, tenants: tuple[GuestSpec, ...] = ()) -> tuple[
    Plan, GuestSpec
]:  # fmt: skip
    doc = _domain(name, vcpus)
    plan = plan_guest(host=host, guest=read_guest(doc, source=f"{name}.xml"), tenants=tenants, intent=intent)
    return plan, read_guest(apply_plan(doc, plan), source=f"{name}.xml")


@pytest.mark.parametrize("host_name", HOSTS)
@pytest.mark.parametrize(("vcpus", "mask"), [(2, "0"), (4, "^0"), (5, "1-2"), (8, "0-3")])
def test_dedicated_vcpus_own_whole_cores_and_the_rest_float_on_one_node(
    host_name: str, vcpus: int, mask: str
) -> None:
    host = host_named(host_name)
    plan, guest = _planned(host, "mix", vcpus, _mixed(mask))
    dedicated = VcpuMask.parse(mask).select(vcpus)
    pins = {p.vcpu: p.cpus for p in plan.vcpupins or ()}
    assert sorted(pins) == list(range(vcpus))
    own = [pins[v] for v in dedicated]
    assert all(len(p) == 1 for p in own)
    cores = [host.core_of(p.first()) for p in own]
    assert len({c.index for c in cores if c is not None}) == len(own)  # one vCPU per core
    siblings = CpuSet().union(*(c.cpus for c in cores if c is not None))
    assert siblings.issubset(plan.vcpu_cpuset or CpuSet())  # whole cores: the idle siblings are held
    pools = {pins[v] for v in range(vcpus) if v not in dedicated}
    assert len(pools) == 1
    pool = pools.pop()
    assert pool.isdisjoint(siblings) and pool.isdisjoint(default_reserve(host))
    assert len(host.nodes_of(pool)) == 1
    assert plan.numatune is not None and host.nodes_of(pool).issubset(plan.numatune.nodeset)
    # stored intent, read back; the audit sees the dedicated vCPUs as dedicated, the rest as floating
    assert guest.intent == plan.intent and guest.intent is not None
    assert guest.intent.dedicated_mask == VcpuMask.parse(mask)
    assert claimed_cpus(guest, host) == CpuSet().union(*own)
    assert held_cpus(guest).pool == pool
    assert run_rules(host, (guest,)) == ()  # `vmtune check` on a fresh mixed plan: nothing


def test_other_guests_respect_a_mixed_tenant() -> None:
    """A dedicated guest never gets the mixed guest's cores or pool; a shared guest may float over the pool
    (it is the shared pool) but never over the dedicated cores; check finds nothing on any of them."""
    host = host_named("dual-skylake-ht-interleaved")
    _, mixed = _planned(host, "mix", 6, _mixed("0-1"))
    held = held_cpus(mixed)
    plan, dedicated = _planned(host, "ded", 4, Intent(), (mixed,))
    assert CpuSet(p.cpus.first() for p in plan.vcpupins or ()).isdisjoint(held.cpus)
    plan, shared = _planned(host, "sh", 2, Intent(cpu_policy=CpuPolicy.SHARED), (mixed, dedicated))
    assert (plan.vcpu_cpuset or CpuSet()).isdisjoint(held.vcpu_pins | held.cpuset)
    everyone = (mixed, dedicated, shared)
    assert run_rules(host, everyone) == ()
    # `vmtune host --map` agrees: the pool is time-shared, nobody's CPU is claimed twice
    assert clashes(host, everyone) == () and shared_cores(host, everyone) == ()


def test_a_dedicated_guest_on_a_mixed_guests_pool_is_vt104() -> None:
    host = host_named("dual-skylake-ht-interleaved")
    _, mixed = _planned(host, "mix", 4, _mixed("0"))
    pool = held_cpus(mixed).pool
    intruder = GuestSpec(name="intruder", source="intruder.xml", vcpus=1, intent=Intent(),
                         vcpupins=(VcpuPin(vcpu=0, cpus=CpuSet([pool.first()])),))  # fmt: skip
    found = run_rules(host, (mixed, intruder), select=frozenset({"VT104"}))
    assert {f.guest for f in found} == {"mix", "intruder"}


def test_realtime_vcpus_default_to_the_dedicated_ones() -> None:
    host = host_named("dual-skylake-ht-interleaved")
    plan, _ = _planned(host, "rt", 4, _mixed("2-3", Profile.REALTIME))
    fifo = CpuSet().union(*(s.vcpus for s in plan.vcpusched or () if s.scheduler == "fifo"))
    assert fifo == CpuSet([2, 3])
    assert plan.features is None or plan.features.kvm_hint_dedicated is not True


@pytest.mark.parametrize(
    ("intent", "says"),
    [
        (Intent(cpu_policy=CpuPolicy.MIXED), "--cpu-policy mixed: needs --dedicated-mask"),
        (Intent(dedicated_mask=VcpuMask.parse("0")), "--dedicated-mask: only with --cpu-policy mixed"),
        (_mixed("0-3"), "selects every vCPU"),
        (_mixed("^0-3"), "selects no vCPU"),
        (_mixed("7"), "vCPU 7 not in the guest's vCPUs"),
        (_mixed("0-1", Profile.REALTIME, realtime_mask=VcpuMask.parse("1-2")),
         "--realtime-mask: vCPU 2 not in --dedicated-mask 0-1"),
    ],
)  # fmt: skip
def test_bad_masks_are_refused_naming_the_flags(intent: Intent, says: str) -> None:
    host = host_named("dual-skylake-ht-interleaved")
    with pytest.raises(InputError, match=says.replace("^", r"\^")):
        plan_guest(host=host, guest=read_guest(_domain("g", 4), source="g.xml"), tenants=(), intent=intent)


def test_cli_refuses_a_realtime_mask_outside_the_dedicated_vcpus(capsys: pytest.CaptureFixture[str]) -> None:
    domain, sysfs = DATA / "domains" / "mixed-nfv.xml", CORPORA / "sysfs" / "hwloc-16em64t-4s2c2t"
    if not sysfs.is_dir():
        pytest.skip("corpus host missing")
    code = main(["plan", str(domain), "--sysfs", str(sysfs), "--cpu-policy", "mixed",
                 "--dedicated-mask", "0-1", "--profile", "realtime", "--realtime-mask", "^0"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert "--realtime-mask" in err and "--dedicated-mask" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_a_wide_mixed_guest_keeps_its_place_on_replan_and_in_the_hook() -> None:
    """36 dedicated vCPUs span nodes: one cell per node, the shared vCPUs in the cell of the pool's node;
    a re-plan and the hook (keep_abi) leave every pin where it is, and check stays silent."""
    host = host_named("big-256")
    _, guest = _planned(host, "wide", 40, _mixed("0-35"))
    assert len(guest.numa_cells) > 1
    pool = held_cpus(guest).pool
    pool_nodes = host.nodes_of(pool)
    home = [c for c in guest.numa_cells if CpuSet(range(36, 40)).issubset(c.cpus)]
    assert len(home) == 1 and len(pool_nodes) == 1
    bound = {m.cellid: m.nodeset for m in guest.memnodes}
    assert bound[home[0].id] == pool_nodes
    assert run_rules(host, (guest,)) == ()
    for keep_abi in (False, True):
        again = plan_guest(
            host=host, guest=guest, tenants=(), intent=guest.intent or Intent(), keep_abi=keep_abi
        )
        assert again.vcpupins == guest.vcpupins
