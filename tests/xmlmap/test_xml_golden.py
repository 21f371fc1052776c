"""Golden cases: hand-written domain XML + hand-written Plan -> expected XML (tests/golden/xml/)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from testutil import DATA, GOLDEN, check_golden
from vmtune.core.guest import (
    EmulatorSched,
    GuestTopology,
    IOThreadDevice,
    IOThreadDeviceKind,
    Memballoon,
    MemoryBacking,
    VcpuPin,
)
from vmtune.core.intent.model import CpuPolicy, Intent, Profile, VcpuMask
from vmtune.core.plan import CpuPlan, FeaturesPlan, Plan
from vmtune.cpuset import CpuSet
from vmtune.xmlmap.apply import apply_plan
from vmtune.xmlmap.diff import detect_style, serialize, unified_diff
from vmtune.xmlmap.guest import read_guest
from vmtune.xmlmap.safe import parse_xml
from vmtune.xmlmap.validate import validate_domain
from xml_plans import WINDOWS_HYPERV, WINDOWS_TIMERS, full_plan, pinned, realtime_plan, wide_db_plan

SCHEMA = Path("/work/shared/corpora/schemas/libvirt-10.7.0/domain.rng")

WIN11 = Plan(
    guest="win11",
    vcpu_placement="static",
    vcpu_cpuset=CpuSet.range(2, 9),
    vcpupins=pinned(8),
    emulatorpin=CpuSet([0, 1]),
    cpu=CpuPlan(topology=GuestTopology(sockets=1, cores=4, threads=2)),
    features=FeaturesPlan(hyperv=WINDOWS_HYPERV),
    timers=WINDOWS_TIMERS,
    intent=Intent(profiles=(Profile.WINDOWS,)),
)  # fmt: skip

CASES: dict[str, tuple[str, Plan]] = {
    "win11-desktop": ("win11-desktop.xml", WIN11),
    "linux-server": (
        "linux-server.xml",
        Plan(
            vcpu_placement="static",
            vcpu_cpuset=CpuSet.range(8, 11),
            vcpupins=pinned(4, first=8),
            iothreads=1,
            device_iothreads=(
                IOThreadDevice(kind=IOThreadDeviceKind.DISK, ordinal=0, label="vda", iothread=1),
            ),
            intent=Intent(),
        ),
    ),
    "realtime-nfv": ("realtime-nfv.xml", realtime_plan()),
    "wide-db": ("wide-db.xml", wide_db_plan()),
    "already-tuned": ("already-tuned.xml", realtime_plan()),
    "comments-foreign-metadata": (
        "comments-foreign-metadata.xml",
        Plan(
            vcpupins=pinned(2),
            emulatorpin=CpuSet([0]),
            timers=WINDOWS_TIMERS[:1],
            memballoon=Memballoon(model="none"),
            intent=Intent(profiles=(Profile.LATENCY,)),
        ),
    ),
    "everything-wrong": (
        "everything-wrong.xml",
        dataclasses.replace(full_plan(4), emulatorsched=EmulatorSched(scheduler="batch")),
    ),
    # 3 vCPUs on 2-thread cores: a 4th, offline vCPU on the lone vCPU's sibling makes threads=2 true
    "odd-smt": (
        "odd-smt.xml",
        Plan(
            vcpu_slots=4,
            vcpu_current=3,
            vcpu_placement="static",
            vcpu_cpuset=CpuSet([1, 2, 21, 22]),
            vcpupins=tuple(VcpuPin(vcpu=v, cpus=CpuSet([c])) for v, c in enumerate((1, 21, 2, 22))),
            cpu=CpuPlan(topology=GuestTopology(sockets=1, cores=2, threads=2)),
            intent=Intent(),
        ),
    ),
    # vCPUs 0-1 on whole cores (siblings 21-22 held), vCPUs 2-3 on the shared pool of node 0
    "mixed-nfv": (
        "mixed-nfv.xml",
        Plan(
            vcpu_placement="static",
            vcpu_cpuset=CpuSet.parse("1-9,21-29", what="t"),
            vcpupins=(
                VcpuPin(vcpu=0, cpus=CpuSet([1])),
                VcpuPin(vcpu=1, cpus=CpuSet([2])),
                VcpuPin(vcpu=2, cpus=CpuSet.parse("3-9,23-29", what="t")),
                VcpuPin(vcpu=3, cpus=CpuSet.parse("3-9,23-29", what="t")),
            ),
            emulatorpin=CpuSet([0, 20]),
            cpu=CpuPlan(topology=GuestTopology(sockets=1, cores=4, threads=1)),
            intent=Intent(cpu_policy=CpuPolicy.MIXED, dedicated_mask=VcpuMask.parse("0-1")),
        ),
    ),
    "compact": (
        "compact.xml",
        Plan(vcpupins=pinned(2), memory_backing=MemoryBacking(hugepages=True), intent=Intent()),
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden(case: str, regen: bool) -> None:
    name, plan = CASES[case]
    raw = (DATA / "domains" / name).read_bytes()
    doc = parse_xml(raw, source=name, root="domain")
    style = detect_style(raw, doc)
    new = apply_plan(doc, plan)
    out = serialize(new, style)
    check_golden(GOLDEN / "xml" / f"{case}.xml", out.decode(), regen)
    check_golden(GOLDEN / "xml" / f"{case}.diff", unified_diff(serialize(doc, style), out, name=name), regen)
    # idempotent, schema-valid, and what the reader sees is what the plan said
    assert serialize(apply_plan(new, plan), style) == out
    assert validate_domain(parse_xml(out, source=name, root="domain"), SCHEMA) or not SCHEMA.exists()
    guest = read_guest(new, source=name)
    if plan.vcpupins is not None:
        assert guest.vcpupins == tuple(sorted(plan.vcpupins, key=lambda p: p.vcpu))
    if plan.intent is not None:
        assert guest.intent == plan.intent
    if plan.emulatorpin is not None:
        assert guest.emulatorpin == plan.emulatorpin
    if plan.vcpu_slots is not None:
        assert (guest.vcpus, guest.current_vcpus) == (plan.vcpu_slots, plan.vcpu_current)


def test_already_tuned_is_unchanged() -> None:
    raw = (DATA / "domains" / "already-tuned.xml").read_bytes()
    doc = parse_xml(raw, source="t", root="domain")
    style = detect_style(raw, doc)
    assert serialize(apply_plan(doc, realtime_plan()), style) == serialize(doc, style) == raw


def test_comments_pis_cdata_and_foreign_metadata_survive() -> None:
    raw = (DATA / "domains" / "comments-foreign-metadata.xml").read_bytes()
    doc = parse_xml(raw, source="t", root="domain")
    out = serialize(apply_plan(doc, CASES["comments-foreign-metadata"][1]), detect_style(raw, doc)).decode()
    for kept in (
        "<!-- managed by hand since 2019: ask ops before changing -->",
        '<?operator reviewed="2023-04-01"?>',
        "<![CDATA[Legacy ERP <prod> & friends]]>",
        "<!-- vmtune must keep this comment -->",
        "<!-- shares were tuned in 2021 -->",
        "<shares>2048</shares>",
        "<ovirt-vm:clusterVersion>4.6</ovirt-vm:clusterVersion>",
        "<qemu:arg value='-no-hpet'/>",
    ):
        assert kept in out
    assert out.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<!-- managed')


def test_every_owned_field_exercised_by_a_golden() -> None:
    """Meta-test (house rule 8): each Plan field is non-None in at least one golden case."""
    fields = [f for f in Plan.__slots__ if f not in ("guest", "notes", "advice")]
    unused = [f for f in fields if all(getattr(plan, f) is None for _, plan in CASES.values())]
    assert unused == []
