"""Realtime rules VT401-VT407 on GuestSpecs built in code: each fires on its bad guest, not on the twin."""

from __future__ import annotations

import pytest

from rulehosts import check_fires_on_bad_not_on_fixed, findings, guest, make_host, pins
from vmtune.core.audit.catalog import ALL_RULES
from vmtune.core.audit.engine import Family, catalog, run_rules
from vmtune.core.guest import GuestSpec, Memballoon, MemoryBacking, VcpuSched
from vmtune.core.intent.model import Intent, Profile
from vmtune.core.plan import Level
from vmtune.core.topology.caps import HostCaps
from vmtune.cpuset import CpuSet


def _fifo(vcpus: str) -> tuple[VcpuSched, ...]:
    return (VcpuSched(vcpus=CpuSet.parse(vcpus), scheduler="fifo", priority=1),)


RT = Intent(profiles=(Profile.REALTIME,))
# a well-tuned NFV guest on the 2n4c2t host: vCPU 0 housekeeping, vCPUs 1-2 FIFO on whole cores 1 and 2
GOOD: dict[str, object] = {
    "vcpupins": pins("0", "1", "2"),
    "emulatorpin": CpuSet.parse("8"),
    "vcpusched": _fifo("1-2"),
    "pmu": False,
    "memballoon": Memballoon(model="none"),
    "memory_backing": MemoryBacking(hugepages=True, locked=True),
    "numatune_mode": "strict",
    "numatune_nodeset": CpuSet.parse("0"),
}


def rt(**changes: object) -> GuestSpec:
    return guest("nfv", **{**GOOD, **changes})


V1 = HostCaps(cgroup_version=1, rt_runtime_us=0)

CASES: list[tuple[str, str, GuestSpec, GuestSpec, HostCaps, Level]] = [
    ("fifo-floating", "VT401", rt(vcpupins=pins("0", "1-3", "1-3")), rt(), HostCaps(), Level.ERROR),
    ("fifo-unpinned", "VT401", rt(vcpupins=pins("0")), rt(), HostCaps(), Level.ERROR),
    ("pmu-default-on", "VT402", rt(pmu=None), rt(), HostCaps(), Level.WARNING),
    ("intent-pmu-on", "VT402", guest(intent=RT, pmu=True), guest(intent=RT, pmu=False),
     HostCaps(), Level.WARNING),
    ("implicit-balloon", "VT403", rt(memballoon=None), rt(), HostCaps(), Level.WARNING),
    ("virtio-balloon", "VT403", rt(memballoon=Memballoon(model="virtio")), rt(), HostCaps(), Level.WARNING),
    ("not-locked", "VT404", rt(memory_backing=MemoryBacking(hugepages=True)), rt(),
     HostCaps(), Level.WARNING),
    ("all-fifo", "VT405", rt(vcpusched=_fifo("0-2")), rt(), HostCaps(), Level.WARNING),
    ("cgroup-v1-no-rt", "VT406", rt(), rt(vcpusched=()), V1, Level.ERROR),
    ("emulator-on-rt-sibling", "VT407", rt(emulatorpin=CpuSet.parse("9")), rt(), HostCaps(), Level.ERROR),
    ("emulator-unpinned", "VT407", rt(emulatorpin=None), rt(), HostCaps(), Level.ERROR),
]  # fmt: skip


@pytest.mark.parametrize(("code", "bad", "fixed", "caps", "severity"), [c[1:] for c in CASES],
                         ids=[f"{c[1]}-{c[0]}" for c in CASES])  # fmt: skip
def test_rule_fires_on_bad_not_on_fixed(
    code: str, bad: GuestSpec, fixed: GuestSpec, caps: HostCaps, severity: Level
) -> None:
    check_fires_on_bad_not_on_fixed(code, bad, fixed, caps=caps, severity=severity)


def test_every_realtime_rule_has_a_case() -> None:
    assert {c[1] for c in CASES} == {r.code for r in catalog() if r.family is Family.REALTIME}


def test_the_good_nfv_guest_is_clean_on_every_rule() -> None:
    found = run_rules(make_host(), (rt(),), caps=HostCaps(cgroup_version=2, apicv=True))
    assert [f.code for f in found] == [], found
    assert ALL_RULES, "the catalog is empty: no rule ran"


def test_vt401_rt_core_shared_with_another_guest() -> None:
    other = guest("other", vcpupins=pins("9"))
    (f,) = findings("VT401", (rt(),), tenants=(other,))
    assert f.message == "realtime vCPU 1 on cores shared with other"


def test_vt406_unknown_or_v2_cgroup_says_nothing() -> None:
    assert findings("VT406", (rt(),), caps=HostCaps(cgroup_version=2, rt_runtime_us=0)) == ()
    assert findings("VT406", (rt(),), caps=HostCaps(cgroup_version=1)) == ()
