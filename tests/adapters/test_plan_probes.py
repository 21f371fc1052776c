"""`vmtune plan` merges the host probes of its sysfs root; latency/realtime gate the CPU on their evidence.

The fixture tree ``tests/data/probes/nested-amd-cgv1`` carries the kernel files the probes read (AVIC off,
cgroup v1 machine partition with no RT budget, ``hypervisor`` in /proc/cpuinfo) and no MSR probe answer;
its twins, built per test in tmp_path, flip each of them or add a cached probe answer, so every assertion
below could fail.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from testutil import DATA
from vmtune.adapters.probes import CPU_PROBE, probe_host_caps, record_msr_probe
from vmtune.cli.app import main
from vmtune.core.plan import Level, Note
from vmtune.core.topology.caps import HostCaps
from vmtune.core.tuning.nested import nested_cpu_features
from vmtune.xmlmap.capabilities import capabilities_caps
from vmtune.xmlmap.domcaps import parse_domcapabilities
from vmtune.xmlmap.guest import read_guest

ROOT = DATA / "probes" / "nested-amd-cgv1"
GUEST = DATA / "probes" / "guest.xml"
DISABLE = ["disable", "arch-capabilities"]
EMULATOR = "/usr/bin/qemu-system-x86_64"
UNKNOWN = "no probe of MSR 0x10a on this host"


def _probed_twin(tmp_path: Path, *, refuses: bool = True) -> Path:
    """The fixture host plus a cached MSR probe answer, made by a shell stand-in for QEMU."""
    twin = tmp_path / "probed"
    shutil.copytree(ROOT, twin)
    (twin / "proc/sys/kernel").mkdir(parents=True)
    (twin / "proc/sys/kernel/osrelease").write_text("6.1.0-test\n")
    emulator = twin / EMULATOR.lstrip("/")
    emulator.parent.mkdir(parents=True)
    answer = "echo 'error: failed to set MSR 0x10a to 0x69' >&2; exit 134" if refuses else "exit 0"
    emulator.write_text(f"#!/bin/sh\n{answer}\n")
    emulator.chmod(0o755)
    assert record_msr_probe(EMULATOR, twin) is not refuses
    assert (twin / CPU_PROBE).is_file()
    return twin


def _bare_metal_twin(tmp_path: Path) -> Path:
    """The fixture host with AVIC on, an RT budget for the machine partition and no hypervisor flag."""
    twin = tmp_path / "bare-metal"
    shutil.copytree(ROOT, twin)
    (twin / "sys/module/kvm_amd/parameters/avic").write_text("1\n")
    (twin / "sys/fs/cgroup/cpu/machine/cpu.rt_runtime_us").write_text("950000\n")
    cpuinfo = twin / "proc/cpuinfo"
    cpuinfo.write_text(cpuinfo.read_text().replace(" hypervisor ", " "))
    return twin


def _plan_json(
    root: Path, profile: str, capsys: pytest.CaptureFixture[str], *extra: str
) -> dict[str, object]:
    assert main(["plan", str(GUEST), "--sysfs", str(root), "--profile", profile, "--json", *extra]) == 0
    doc: dict[str, object] = json.loads(capsys.readouterr().out)
    plan = doc["plan"]
    assert isinstance(plan, dict)
    return plan


def _warnings(plan: dict[str, object]) -> list[str]:
    notes = plan["notes"]
    assert isinstance(notes, list)
    return [n["message"] for n in notes if n["level"] == "warning"]


def test_fixture_probes() -> None:
    caps = probe_host_caps(ROOT)
    assert (caps.apicv, caps.cgroup_version, caps.rt_runtime_us, caps.nested) == (False, 1, 0, True)
    assert caps.rt_runtime_path == "/sys/fs/cgroup/cpu/machine/cpu.rt_runtime_us"


def test_explain_shows_vt406_avic_and_nested_gate(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    root = _probed_twin(tmp_path)
    assert main(["plan", str(GUEST), "--sysfs", str(root), "--profile", "realtime", "--explain"]) == 3
    assert "needs RT runtime" in capsys.readouterr().err  # infeasible here unless --force
    assert (
        main(["plan", str(GUEST), "--sysfs", str(root), "--profile", "realtime", "--explain", "--force"]) == 0
    )
    out, _ = capsys.readouterr()
    assert "warning: rt: --force: realtime needs RT runtime" in out
    assert "echo 950000 > /sys/fs/cgroup/cpu/machine/cpu.rt_runtime_us" in out
    assert "host advice: AVIC: echo 'options kvm_amd avic=1'" in out
    assert "+    <feature policy='disable' name='arch-capabilities'/>" in out
    assert "failed to set MSR 0x10a" in out


def test_json_carries_probe_warning_and_advice(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    plan = _plan_json(_probed_twin(tmp_path), "realtime", capsys, "--force")
    assert any("(VT406)" in w for w in _warnings(plan))
    advice = plan["advice"]
    assert isinstance(advice, list) and any(a.startswith("AVIC: ") for a in advice)
    cpu = plan["cpu"]
    assert isinstance(cpu, dict)
    assert cpu["mode"] == "host-passthrough" and DISABLE in cpu["features"]


def test_bare_metal_twin_has_none_of_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = _plan_json(_bare_metal_twin(tmp_path), "realtime", capsys)
    assert not any("VT406" in w for w in _warnings(plan))
    advice = plan["advice"]
    assert isinstance(advice, list) and not any("AVIC" in a for a in advice)
    cpu = plan["cpu"]
    assert isinstance(cpu, dict) and cpu["mode"] == "host-passthrough"
    assert DISABLE not in cpu["features"]


@pytest.mark.parametrize(
    ("profile", "gated"), [("latency", True), ("realtime", True), ("balanced", False), ("windows", False)]
)
def test_nested_gate_only_for_profiles_that_pick_a_host_cpu(
    profile: str, gated: bool, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    force = ("--force",) if profile == "realtime" else ()  # this twin gives FIFO no RT runtime
    cpu = _plan_json(_probed_twin(tmp_path), profile, capsys, *force)["cpu"]
    features = cpu["features"] if isinstance(cpu, dict) else []
    assert (DISABLE in features) is gated


def test_nested_without_a_probe_answer_only_warns(capsys: pytest.CaptureFixture[str]) -> None:
    """The hypervisor flag alone does not say whether KVM refuses the MSR: nothing written, a warning."""
    plan = _plan_json(ROOT, "latency", capsys)
    cpu = plan["cpu"]
    assert isinstance(cpu, dict) and cpu["mode"] == "host-passthrough"
    assert DISABLE not in cpu["features"]
    assert any(UNKNOWN in w for w in _warnings(plan))


def test_nested_host_that_takes_the_msr_keeps_it(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    plan = _plan_json(_probed_twin(tmp_path, refuses=False), "latency", capsys)
    cpu = plan["cpu"]
    assert isinstance(cpu, dict) and DISABLE not in cpu["features"]
    assert not any("MSR 0x10a" in w for w in _warnings(plan))


def test_cgroup_v2_twin_drops_vt406(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    twin = tmp_path / "v2"
    shutil.copytree(ROOT, twin)
    shutil.rmtree(twin / "sys/fs/cgroup")
    (twin / "sys/fs/cgroup").mkdir()
    (twin / "sys/fs/cgroup/cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    assert not any("VT406" in w for w in _warnings(_plan_json(twin, "realtime", capsys)))


def test_capabilities_source_is_not_probed(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """--capabilities names another machine: the local kernel's probes must not leak into its plan."""
    caps = tmp_path / "caps.xml"
    caps.write_text(_capabilities_xml(hypervisor=False))
    assert main(["plan", str(GUEST), "--capabilities", str(caps), "--profile", "realtime", "--json",
                 "--hugepages", "none"]) == 0  # fmt: skip
    plan = json.loads(capsys.readouterr().out)["plan"]
    notes = [n["message"] for n in plan["notes"]]
    assert any("host cgroup setup unknown" in m for m in notes)
    assert DISABLE not in plan["cpu"]["features"]


def test_capabilities_hypervisor_flag_alone_only_warns(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    caps = tmp_path / "caps.xml"
    caps.write_text(_capabilities_xml(hypervisor=True))
    assert main(["plan", str(GUEST), "--capabilities", str(caps), "--profile", "latency", "--json",
                 "--hugepages", "none"]) == 0  # fmt: skip
    plan = json.loads(capsys.readouterr().out)["plan"]
    assert DISABLE not in plan["cpu"]["features"]
    assert any(UNKNOWN in w for w in _warnings(plan))


def _capabilities_xml(*, hypervisor: bool) -> str:
    cpus = "".join(
        f"<cpu id='{c}' socket_id='0' die_id='0' core_id='{c % 4}' siblings='{c % 4},{c % 4 + 4}'/>"
        for c in range(8)
    )
    feature = "<feature name='hypervisor'/>" if hypervisor else ""
    return (
        "<capabilities><host><cpu><arch>x86_64</arch><model>EPYC-Milan</model><vendor>AMD</vendor>"
        f"<feature name='x2apic'/>{feature}<pages unit='KiB' size='4'/></cpu><topology><cells num='1'>"
        "<cell id='0'><memory unit='KiB'>16777216</memory><pages unit='KiB' size='4'>4194304</pages>"
        f"<cpus num='8'>{cpus}</cpus></cell></cells></topology></host></capabilities>"
    )


# -- the readers ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cpuinfo", "expected"),
    [
        ("processor\t: 0\nflags\t\t: fpu vme hypervisor lahf_lm\n", True),
        ("processor\t: 0\nflags\t\t: fpu vme lahf_lm svm\n", False),
        # arm64 prints Features, not flags: unknown
        ("processor\t: 0\nFeatures\t: fp asimd evtstrm\n", None),
        (None, None),
    ],
    ids=["nested", "bare-metal", "arm64", "missing"],
)
def test_probe_nested(tmp_path: Path, cpuinfo: str | None, expected: bool | None) -> None:
    if cpuinfo is not None:
        (tmp_path / "proc").mkdir()
        (tmp_path / "proc/cpuinfo").write_text(cpuinfo)
    assert probe_host_caps(tmp_path).nested is expected


@pytest.mark.parametrize(
    ("hypervisor", "arch", "expected"),
    [(True, "x86_64", True), (False, "x86_64", False), (True, "aarch64", None)],
)
def test_capabilities_caps(hypervisor: bool, arch: str, expected: bool | None) -> None:
    xml = _capabilities_xml(hypervisor=hypervisor).replace("x86_64", arch)
    assert capabilities_caps(xml, source="t").nested is expected


def test_domcapabilities_hypervisor_is_not_nesting(corpora: Path) -> None:
    """Bare-metal SEV/TDX servers list hypervisor in host-model too (KVM sets it for every guest)."""
    for name in ("virt-manager/kvm-x86_64-domcaps-amd-sev.xml", "kubevirt/domcapabilities_tdx.xml"):
        data = (corpora / "domcapabilities" / name).read_bytes()
        assert b"name='hypervisor'" in data
        assert parse_domcapabilities(data, source=name).nested is None


# -- the core gate --------------------------------------------------------------------------------------

_XML = "<domain type='{type}'><name>g</name><memory>1048576</memory><vcpu>2</vcpu>{cpu}</domain>"


_REFUSED = HostCaps(nested=True, arch_capabilities=True, arch_capabilities_msr=False)
_PASSTHROUGH = "<cpu mode='host-passthrough'><feature policy='{}' name='arch-capabilities'/></cpu>"


@pytest.mark.parametrize(
    ("dtype", "cpu", "mode", "caps", "feature", "note"),
    [
        ("kvm", "", "host-passthrough", _REFUSED, True, Level.INFO),
        ("kvm", "<cpu mode='host-model'/>", "host-model", _REFUSED, True, Level.INFO),
        # the probe answered without domcapabilities: enough
        ("kvm", "", "host-passthrough", HostCaps(arch_capabilities_msr=False), True, Level.INFO),
        ("kvm", "", "host-passthrough", HostCaps(nested=True, arch_capabilities_msr=True), False, None),
        # host-model lacks the feature: no note without a probe, the probe still wins
        ("kvm", "", "host-passthrough", HostCaps(nested=True, arch_capabilities=False), False, None),
        ("kvm", "", "host-passthrough", HostCaps(arch_capabilities=False, arch_capabilities_msr=False), True,
         Level.INFO),
        # no answer: nothing written; nested hosts say why
        ("kvm", "", "host-passthrough", HostCaps(nested=True), False, Level.WARNING),
        ("kvm", "", "host-passthrough", HostCaps(nested=False), False, None),
        ("kvm", "", "host-passthrough", HostCaps(), False, None),
        ("qemu", "", None, _REFUSED, False, None),
        ("kvm", "<cpu mode='custom'><model>EPYC</model></cpu>", "custom", _REFUSED, False, None),
        # already there: kept, nothing to explain
        ("kvm", _PASSTHROUGH.format("disable"), "host-passthrough", _REFUSED, True, None),
        ("kvm", _PASSTHROUGH.format("disable"), "host-passthrough", HostCaps(nested=True), False, None),
        # the guest asked for it: overridden, loudly
        ("kvm", _PASSTHROUGH.format("require"), "host-passthrough", _REFUSED, True, Level.WARNING),
    ],
    ids=["passthrough", "host-model", "probe-only", "taken", "not-offered", "not-offered-refused",
         "unknown-nested", "bare-metal", "unknown", "tcg", "custom-model", "already", "already-unknown",
         "required"],
)  # fmt: skip
def test_nested_gate(  # noqa: PLR0917 - one parameter per table column
    dtype: str, cpu: str, mode: str | None, caps: HostCaps, feature: bool, note: Level | None
) -> None:
    guest = read_guest(_XML.format(type=dtype, cpu=cpu), source="t.xml")
    notes: list[Note] = []
    got = nested_cpu_features(guest=guest, caps=caps, mode=mode, notes=notes)
    assert (got == (("disable", "arch-capabilities"),)) is feature
    assert [n.level for n in notes] == ([note] if note else [])
