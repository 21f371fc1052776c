"""The guest topology tells the truth about the host siblings its vCPUs sit on: the planner and VT109
share one rule (``threads_per_vcpu_core``), judged here also by a referee written from QEMU's numbering."""

from __future__ import annotations

import pytest
from lxml import etree

from hosts import host_named
from vmtune.core.audit.engine import run_rules
from vmtune.core.guest import GuestSpec
from vmtune.core.intent.model import Intent, Profile, ThreadPolicy
from vmtune.core.plan import Level, Plan
from vmtune.core.planner import plan_guest
from vmtune.core.topology.model import Host
from vmtune.core.tuning.guesttopo import round_to_cores, threads_per_vcpu_core
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
