"""CPU rules VT101-VT110 on GuestSpecs built in code: each fires on its bad guest, not on the twin."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from planner_hosts import host_named
from rulehosts import findings, guest, make_host, pins
from vmtune.core.audit.catalog import BY_CODE
from vmtune.core.audit.engine import Family, catalog, claimed_cpus, is_dedicated, run_rules
from vmtune.core.guest import CacheAlloc, CacheTune, GuestSpec, GuestTopology, IOThreadPin
from vmtune.core.intent.model import CacheFit, Intent, Profile, ThreadPolicy
from vmtune.core.ledger.pool import default_reserve
from vmtune.core.plan import Level, Plan
from vmtune.core.planner import plan_guest
from vmtune.core.topology.caps import HostCaps
from vmtune.core.topology.model import Host
from vmtune.core.topology.resctrl import Resctrl, ResctrlGroup, ResctrlResource
from vmtune.cpuset import CpuSet
from vmtune.errors import InfeasibleError
from vmtune.xmlmap.apply import apply_plan
from vmtune.xmlmap.guest import read_guest

H = make_host()  # 2 nodes x 4 cores x 2 threads; core k = CPUs k, k+8; node 0 = 0-3,8-11
L2_CLUSTERS = make_host(nodes=1, cores_per_node=8, threads=1, l2_cores=4)  # Phytium-like: 4 cores per L2
TWO_L3_PER_NODE = make_host(l3_per_node=2)  # CCX-like: L3 of node 0 = CPUs 0-1,8-9 and 2-3,10-11
INTENT = Intent()
LATENCY = Intent(profiles=(Profile.LATENCY,))
# the L3s numbered as the kernel does (cache id = node here); 27.5 MiB = 11 ways of 2560 KiB
H_L3 = replace(H, caches=tuple(replace(g, cache_id=g.index - len(H.groups(2)), size_kib=28160)
                               if g.level == 3 else g for g in H.caches))  # fmt: skip
RDT = HostCaps(
    resctrl=Resctrl(
        resources=(ResctrlResource(name="L3", cbm_mask=0x7FF, num_closids=16),),
        default=ResctrlGroup(name="", masks=(("L3", 0, 0x1F), ("L3", 1, 0x1F))),
    )
)
# the default group holds ways 4-7 of cache 0: its 7 free ways are runs of 4 and 3
RDT_SPLIT = HostCaps(
    resctrl=Resctrl(
        resources=(ResctrlResource(name="L3", cbm_mask=0x7FF, num_closids=16),),
        default=ResctrlGroup(name="", masks=(("L3", 0, 0x0F0), ("L3", 1, 0x1F))),
    )
)


def l3(kib: int, cache_id: int = 0) -> tuple[CacheTune, ...]:
    return (CacheTune(vcpus=CpuSet([0, 1]), caches=(CacheAlloc(id=cache_id, level=3, type="both",
                                                                size_bytes=kib * 1024),)),)  # fmt: skip


@dataclass(frozen=True)
class Case:
    id: str
    code: str
    bad: tuple[GuestSpec, ...]
    fixed: tuple[GuestSpec, ...]
    host: Host = H
    tenants: tuple[GuestSpec, ...] = ()
    fixed_tenants: tuple[GuestSpec, ...] | None = None
    reserved: str = ""
    caps: HostCaps = field(default_factory=HostCaps)
    severity: Level | None = None


CASES = [
    Case("intent-unpinned", "VT101", (guest(vcpus=4, intent=INTENT),),
         (guest(vcpupins=pins("0", "8", "1", "9"), intent=INTENT),), severity=Level.ERROR),
    Case("partial-pins", "VT101", (guest(vcpus=4, vcpupins=pins("0", "8")),),
         (guest(vcpupins=pins("0", "8", "1", "9")),), severity=Level.WARNING),
    Case("hint-dedicated", "VT101", (guest(vcpus=2, kvm_hint_dedicated=True),),
         (guest(vcpus=2, kvm_hint_dedicated=False),), severity=Level.ERROR),
    Case("pin-spans-nodes", "VT102", (guest(vcpupins=pins("0-7", "0-7")),),
         (guest(vcpupins=pins("0-3", "0-3")),)),
    Case("split-siblings", "VT103", (guest("a", vcpupins=pins("0", "1")),),
         (guest("a", vcpupins=pins("0", "8")),),
         tenants=(guest("b", vcpupins=pins("8", "9")),),
         fixed_tenants=(guest("b", vcpupins=pins("1", "9")),)),
    Case("overlap", "VT104", (guest("a", vcpupins=pins("0", "8")),), (guest("a", vcpupins=pins("0", "8")),),
         tenants=(guest("b", vcpupins=pins("8", "2")),),
         fixed_tenants=(guest("b", vcpupins=pins("2", "10")),),
         severity=Level.ERROR),
    Case("shared-l2-cluster", "VT105", (guest("a", vcpupins=pins("0")),),
         (guest("a", vcpupins=pins("4")),), host=L2_CLUSTERS,
         tenants=(guest("b", vcpupins=pins("2", "3")),)),
    Case("shared-l3", "VT105", (guest("a", vcpupins=pins("0")),),
         (guest("a", vcpupins=pins("2")),), host=TWO_L3_PER_NODE,
         tenants=(guest("b", vcpupins=pins("1", "9")),)),
    Case("emulator-on-vcpus", "VT106",
         (guest(vcpupins=pins("1", "9"), emulatorpin=CpuSet.parse("1"), intent=LATENCY),),
         (guest(vcpupins=pins("1", "9"), emulatorpin=CpuSet.parse("2"), intent=LATENCY),)),
    Case("emulator-unpinned", "VT106", (guest(vcpupins=pins("1", "9"), intent=LATENCY),),
         (guest(vcpupins=pins("1", "9"), intent=INTENT),)),
    Case("iothread-on-vcpus", "VT106",
         (guest(vcpupins=pins("1", "9"), emulatorpin=CpuSet.parse("0"), iothreads=1,
                iothreadpins=(IOThreadPin(iothread=1, cpus=CpuSet.parse("9")),), intent=LATENCY),),
         (guest(vcpupins=pins("1", "9"), emulatorpin=CpuSet.parse("0"), iothreads=1,
                iothreadpins=(IOThreadPin(iothread=1, cpus=CpuSet.parse("0")),), intent=LATENCY),)),
    Case("reserved", "VT107", (guest(vcpupins=pins("0", "8")),), (guest(vcpupins=pins("1", "9")),),
         reserved="0,8"),
    Case("intent-reserve", "VT107",
         (guest(vcpupins=pins("0", "8"), intent=Intent(reserve=CpuSet.parse("0"))),),
         (guest(vcpupins=pins("1", "9"), intent=Intent(reserve=CpuSet.parse("0"))),)),
    Case("outside-isolcpus", "VT107", (guest(vcpupins=pins("0", "8")),), (guest(vcpupins=pins("1", "9")),),
         host=make_host(isolated="1-7,9-15")),
    Case("missing-cpu", "VT108", (guest(vcpupins=pins("0", "64")),), (guest(vcpupins=pins("0", "8")),),
         severity=Level.ERROR),
    Case("offline-emulator", "VT108", (guest(vcpupins=pins("0"), emulatorpin=CpuSet.parse("14-15")),),
         (guest(vcpupins=pins("0"), emulatorpin=CpuSet.parse("6-7")),), host=make_host(offline="15"),
         severity=Level.WARNING),
    Case("threads-not-siblings", "VT109",
         (guest(vcpupins=pins("0", "1"), topology=GuestTopology(sockets=1, cores=1, threads=2)),),
         (guest(vcpupins=pins("0", "8"), topology=GuestTopology(sockets=1, cores=1, threads=2)),)),
    Case("siblings-hidden", "VT109",
         (guest(vcpupins=pins("0", "8"), topology=GuestTopology(sockets=1, cores=2, threads=1)),),
         (guest(vcpupins=pins("0", "1"), topology=GuestTopology(sockets=1, cores=2, threads=1)),)),
    Case("threads-no-smt", "VT109",
         (guest(vcpupins=pins("0", "1"), topology=GuestTopology(sockets=1, cores=1, threads=2)),),
         (guest(vcpupins=pins("0", "1"), topology=GuestTopology(sockets=1, cores=2, threads=1)),),
         host=make_host(threads=1)),
    Case("cache-size", "VT110", (guest("a", vcpupins=pins("0", "8"), cachetunes=l3(20480)),),
         (guest("a", vcpupins=pins("0", "8"), cachetunes=l3(12800)),), host=H_L3,
         tenants=(guest("b", vcpupins=pins("1", "9"), cachetunes=l3(10240)),), severity=Level.ERROR),
    Case("other-cache-id", "VT110", (guest("a", vcpupins=pins("0", "8"), cachetunes=l3(20480)),),
         (guest("a", vcpupins=pins("0", "8"), cachetunes=l3(20480)),), host=H_L3,
         tenants=(guest("b", vcpupins=pins("1", "9"), cachetunes=l3(10240)),),
         fixed_tenants=(guest("b", vcpupins=pins("4", "12"), cachetunes=l3(10240, cache_id=1)),)),
    Case("resctrl-ways", "VT110", (guest("a", vcpupins=pins("0", "8"), cachetunes=l3(4 * 2560)),),
         (guest("a", vcpupins=pins("0", "8"), cachetunes=l3(3 * 2560)),), host=H_L3, caps=RDT,
         tenants=(guest("b", vcpupins=pins("1", "9"), cachetunes=l3(3 * 2560)),)),
    # 2 + 5 ways are the 7 free ones, but 5 contiguous ways are not there: 4 + 3 (or 3 + 3) are
    Case("resctrl-runs", "VT110", (guest("a", vcpupins=pins("0", "8"), cachetunes=l3(5 * 2560)),),
         (guest("a", vcpupins=pins("0", "8"), cachetunes=l3(4 * 2560)),), host=H_L3, caps=RDT_SPLIT,
         tenants=(guest("b", vcpupins=pins("1", "9"), cachetunes=l3(2 * 2560)),)),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.code}-{c.id}")
def test_rule_fires_on_bad_not_on_fixed(case: Case) -> None:
    kw = {"host": case.host, "caps": case.caps, "reserved": case.reserved}
    bad = findings(case.code, case.bad, tenants=case.tenants, **kw)  # type: ignore[arg-type]
    assert bad, f"{case.code} did not fire"
    assert all(f.code == case.code and f.guest == case.bad[0].name for f in bad)
    assert all(f.message and f.fix and f.location for f in bad)
    if case.severity is not None:
        assert {f.severity for f in bad} == {case.severity}
    tenants = case.tenants if case.fixed_tenants is None else case.fixed_tenants
    fixed = findings(case.code, case.fixed, tenants=tenants, **kw)  # type: ignore[arg-type]
    assert fixed == ()


def test_every_cpu_rule_has_a_case() -> None:
    assert {c.code for c in CASES} == {r.code for r in catalog() if r.family is Family.CPU}


def test_dedicated_intent_signals() -> None:
    assert is_dedicated(guest(intent=INTENT), H)
    assert is_dedicated(guest(kvm_hint_dedicated=True), H)
    assert is_dedicated(guest(vcpupins=pins("0", "8")), H)  # 1:1 pins
    assert is_dedicated(guest(vcpupins=pins("0,8", "1,9")), H)  # core pins
    assert not is_dedicated(guest(vcpupins=pins("0-3", "0-3")), H)  # floating over a node: shares on purpose
    assert not is_dedicated(guest(vcpus=2), H)
    assert claimed_cpus(guest(vcpupins=pins("0-3", "0-3")), H) == CpuSet()
    assert claimed_cpus(guest(vcpupins=pins("0", "8")), H) == CpuSet.parse("0,8")


def test_floating_guests_never_trigger_cross_guest_rules() -> None:
    a = guest("a", vcpupins=pins("0-7", "0-7"))
    b = guest("b", vcpupins=pins("0-7", "0-7"))
    for code in ("VT103", "VT104", "VT105"):
        assert findings(code, (a, b)) == ()


def test_cross_guest_findings_name_both_guests_once_each() -> None:
    a = guest("a", vcpupins=pins("0", "1"))
    b = guest("b", vcpupins=pins("0", "1"))
    found = findings("VT104", (a, b))
    assert [(f.guest, f.location) for f in found] == [("a", "CPUs 0-1"), ("b", "CPUs 0-1")]
    assert "also pinned exclusively by b" in found[0].message


def test_only_targets_get_findings_tenants_are_context() -> None:
    a = guest("a", vcpupins=pins("0", "1"))
    b = guest("b", vcpupins=pins("0", "1"))
    assert [f.guest for f in findings("VT104", (a,), tenants=(b,))] == ["a"]


def test_no_idle_group_means_no_vt105() -> None:
    # every L3 group is in use, so sharing one is the best the host can do
    a = guest("a", vcpupins=pins("0"))
    b = guest("b", vcpupins=pins("1"))
    c, d, e = (guest(name, vcpupins=pins(cpu)) for name, cpu in (("c", "2"), ("d", "4"), ("e", "6")))
    assert findings("VT105", (a, b, c, d, e), host=TWO_L3_PER_NODE) == ()
    # the idle group 2-3,10-11 is on a and b's node: a needless share
    assert findings("VT105", (a, b, d, e), host=TWO_L3_PER_NODE) != ()
    # the idle group 6-7,14-15 is on node 1: moving there is the NUMA fit's business, not a finding
    assert findings("VT105", (a, b, c, d), host=TWO_L3_PER_NODE) == ()


def test_closing_a_group_exactly_is_no_vt105() -> None:
    # b fills the last free CPUs of a's group: packing, the group is full and nobody else can join it
    a = guest("a", vcpupins=pins("0", "8"))
    b = guest("b", vcpupins=pins("1", "9"))
    assert findings("VT105", (a, b), host=TWO_L3_PER_NODE) == ()
    assert findings("VT105", (a, guest("b", vcpupins=pins("1"))), host=TWO_L3_PER_NODE) != ()


@pytest.mark.parametrize(
    ("intent_b", "fires"),
    [
        (Intent(), False),  # two prefer guests share a core when no whole one is left, as their plans say
        (None, True),  # a guest vmtune never planned keeps its cores whole
        (Intent(thread_policy=ThreadPolicy.REQUIRE), True),
        (Intent(profiles=(Profile.LATENCY,)), True),  # isolate, by the profile
    ],
)
def test_vt103_judges_the_cores_of_guests_that_keep_them_whole(intent_b: Intent | None, fires: bool) -> None:
    # CPUs 1 and 9 are the two threads of one core (interleaved numbering on 2 nodes x 4 cores)
    a = guest("a", vcpupins=pins("1"), intent=Intent())
    b = guest("b", vcpupins=pins("9"), intent=intent_b)
    assert bool(findings("VT103", (a, b))) is fires


@pytest.mark.parametrize(
    ("intent", "fires"),
    [
        (None, True),  # a guest vmtune never planned: nobody chose to pack it
        (Intent(cache_fit=CacheFit.OWN), True),
        (Intent(profiles=(Profile.LATENCY,)), True),  # the latency profiles keep groups alone
        (Intent(), False),  # pack (the default) shares the fullest group on purpose
        (Intent(cache_fit=CacheFit.PACK, profiles=(Profile.LATENCY,)), False),
    ],
)
def test_vt105_judges_the_guests_that_keep_their_groups_alone(intent: Intent | None, fires: bool) -> None:
    # b shares a's group with CPUs left over while the group 2-3,10-11 of their node is idle
    a = guest("a", vcpupins=pins("0"), intent=Intent())
    b = guest("b", vcpupins=pins("1"), intent=intent)
    assert [f.guest for f in findings("VT105", (a, b), host=TWO_L3_PER_NODE)] == (["b"] if fires else [])


def test_emulator_pins_on_housekeeping_cpus_use_no_cache_group() -> None:
    # CPU 2 is reserved (--reserve): b's emulator there does not make the group of CPUs 2-3,10-11 busy
    # (b's vCPU on node 1, where the group 6-7,14-15 is idle: b's own nodes are 0 and 1)
    a = guest("a", vcpupins=pins("3"), emulatorpin=CpuSet.parse("2"))
    b = guest("b", vcpupins=pins("4"), emulatorpin=CpuSet.parse("2"))
    reserved = "2"
    assert findings("VT105", (a, b), host=TWO_L3_PER_NODE, reserved=reserved) == ()
    # pinned off housekeeping, the emulator is b's own use of that group
    b_off = guest("b", vcpupins=pins("4"), emulatorpin=CpuSet.parse("10"))
    assert findings("VT105", (a, b_off), host=TWO_L3_PER_NODE, reserved=reserved) != ()


def test_vt102_aggregates_vcpus_with_the_same_pin() -> None:
    found = findings("VT102", (guest(vcpupins=pins("0-15", "0-15", "0-15", "0")),))
    assert len(found) == 1
    assert found[0].message.startswith("vCPUs 0-2 pinned to CPUs 0-15")
    assert found[0].location == "/domain/cputune/vcpupin[@vcpu='0']"


def test_vt109_ignores_partly_pinned_guests() -> None:
    g = guest(vcpus=4, vcpupins=pins("0", "1"), topology=GuestTopology(sockets=1, cores=2, threads=2))
    assert findings("VT109", (g,)) == ()


# -- invariants over random tenant sets ------------------------------------------------------------------
_CPU = st.integers(min_value=0, max_value=17)  # 16 online CPUs plus two the host lacks
_PIN = st.lists(_CPU, min_size=1, max_size=3).map(lambda c: ",".join(map(str, c)))
_GUEST = st.builds(
    lambda name, specs, hint: guest(name, vcpupins=pins(*specs), kvm_hint_dedicated=hint),
    st.sampled_from("abcdef"),
    st.lists(_PIN, min_size=1, max_size=4),
    st.booleans(),
)


@given(
    st.lists(_GUEST, min_size=1, max_size=5, unique_by=lambda g: g.name),
    st.integers(min_value=0, max_value=4),
)
def test_audit_invariants(guests: list[GuestSpec], split: int) -> None:
    targets, tenants = guests[: split + 1], guests[split + 1 :]
    found = run_rules(H, targets, tenants=tenants)
    # deterministic, only targets get findings, every finding is complete and in the catalog
    assert found == run_rules(H, targets, tenants=tenants)
    assert {f.source for f in found} <= {g.source for g in targets}
    assert all(f.code in BY_CODE and f.message and f.fix and f.location for f in found)
    # overlapping exclusive pins are symmetric: if a target reports VT104, its rival (when a target) does too
    names = {g.name for g in targets}
    for f in found:
        if f.code == "VT104":
            rivals = f.message.split("exclusively by ")[1].split(" (+")[0].split(", ")
            for rival in set(rivals) & names:
                assert any(o.code == "VT104" and o.guest == rival for o in found)


# -- a fresh vmtune plan triggers none of the rules it plans by ---------------------------------------------
_PLANNED_BY = frozenset({"VT102", "VT103", "VT104", "VT105", "VT107", "VT108", "VT109"})
_INTENTS = (Intent(), Intent(profiles=(Profile.LATENCY,)), Intent(thread_policy=ThreadPolicy.ISOLATE))
_STREAM_HOSTS = (
    "dual-skylake-ht-interleaved", "dual-ht-adjacent", "epyc-2ccx-per-node", "snc2-xeon", "phytium-s2500",
    "hybrid-pe", "offline-cpus", "memoryless-node", "small-2cpu", "big-256", "epyc-milan-nps1",
)  # fmt: skip


def _domain(name: str, vcpus: int) -> etree._ElementTree:
    return etree.ElementTree(
        etree.fromstring(
            f"<domain type='kvm'><name>{name}</name><memory unit='KiB'>{vcpus * 262144}</memory>"
            f"<vcpu>{vcpus}</vcpu><os><type arch='x86_64'>hvm</type></os></domain>"
        )
    )


def _stream(host: Host, seed: int) -> Iterator[tuple[GuestSpec, tuple[GuestSpec, ...], Plan]]:
    """Guests of a seeded mix of sizes and intents planned one after another, each written into its XML and
    read back as `check` reads it: (the guest, the tenants it was planned around, its plan)."""
    rng = random.Random(seed)
    placed: list[GuestSpec] = []
    refusals = 0
    while refusals < 4 and len(placed) < 40:
        name, vcpus = f"g{len(placed)}", rng.choice((1, 1, 2, 2, 3, 4, 4, 6, 8, 8, 16))
        doc = _domain(name, vcpus)
        try:
            plan = plan_guest(host=host, guest=read_guest(doc, source=f"{name}.xml"), tenants=placed,
                              intent=rng.choice(_INTENTS))  # fmt: skip
        except InfeasibleError:
            refusals += 1
            continue
        tenants = tuple(placed)
        placed.append(read_guest(apply_plan(doc, plan), source=f"{name}.xml"))
        yield placed[-1], tenants, plan


@pytest.mark.parametrize("host_name", _STREAM_HOSTS)
def test_a_fresh_plan_triggers_none_of_the_rules_it_plans_by(host_name: str) -> None:
    """The planner and the rules share their definitions (held CPUs, sibling truth): a guest vmtune just
    placed gets no finding, except the split core and the untellable siblings the plan itself warned about
    (no whole core was left)."""
    host = host_named(host_name)
    for seed in range(6):
        for new, tenants, plan in _stream(host, seed):
            found = run_rules(host, (new,), tenants=tenants, select=_PLANNED_BY)
            split = any(n.level is Level.WARNING and "share a physical core" in n.message for n in plan.notes)
            hidden = any(n.level is Level.WARNING and n.topic == "topology" for n in plan.notes)
            assert all((f.code == "VT103" and split) or (f.code == "VT109" and hidden) for f in found), (
                seed,
                new.name,
                found,
            )


_CACHE_HOSTS = ("epyc-2ccx-per-node", "epyc-milan-nps1", "epyc-genoa-nps1", "phytium-s2500", "hybrid-pe",
                "big-256")  # fmt: skip


@pytest.mark.parametrize("host_name", _CACHE_HOSTS)
def test_a_fresh_plan_triggers_no_vt105(host_name: str) -> None:
    """The planner and VT105 share ``placement.sharing``: no guest of a stream (nor any tenant, checked
    again at the end) shares a cache group while an idle one could hold its part."""
    host = host_named(host_name)
    for seed in range(4):
        everyone: list[GuestSpec] = []
        for new, tenants, _ in _stream(host, seed):
            assert run_rules(host, (new,), tenants=tenants, select=frozenset({"VT105"})) == (), (
                seed,
                new.name,
            )
            everyone.append(new)
        assert run_rules(host, everyone, select=frozenset({"VT105"})) == (), seed


@pytest.mark.parametrize("host_name", ["epyc-milan-nps1", "epyc-genoa-nps1"])
def test_eight_vcpu_guests_share_a_ccd_only_to_fill_it(host_name: str) -> None:
    """8-vCPU guests on 8-core (16-CPU) CCDs: each spans one CCD, and a CCD holds two guests only when the
    second fills its last free CPUs (packing: the CCD is then full). No guest joins a CCD with room left
    while another CCD is idle: the pairing VT105 reported on vmtune's own plans is gone."""
    host = host_named(host_name)
    ccds = [g.cpus for g in host.groups(3)]
    reserved = default_reserve(host)
    placed: list[GuestSpec] = []
    for i in range(
        2 * len(ccds) - len(host.nodes)
    ):  # a node's first CCD holds one: its first core is reserved
        doc = _domain(f"g{i}", 8)
        plan = plan_guest(host=host, guest=read_guest(doc, source=f"g{i}.xml"), tenants=placed, intent=INTENT)
        placed.append(read_guest(apply_plan(doc, plan), source=f"g{i}.xml"))
        cpus = claimed_cpus(placed[-1], host)
        assert sum(not cpus.isdisjoint(ccd) for ccd in ccds) == 1, (i, cpus)
    for ccd in ccds:
        users = [claimed_cpus(g, host) & ccd for g in placed if not claimed_cpus(g, host).isdisjoint(ccd)]
        assert len(users) <= 2
        if len(users) == 2:
            assert CpuSet().union(*users) == ccd - reserved, ccd  # full: closed exactly
    assert run_rules(host, placed, select=frozenset({"VT105"})) == ()
