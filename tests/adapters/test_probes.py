"""Host probes on fake roots: APICv/AVIC flags, cgroup version, RT runtime of the machine slice, PCI NUMA,
and the cached MSR 0x10a probe (run against a shell stand-in for QEMU that answers as QEMU does)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from vmtune.adapters.probes import CPU_PROBE, merge_caps, probe_host_caps, record_msr_probe
from vmtune.core.topology.caps import HostCaps


def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"sys/module/kvm_intel/parameters/enable_apicv": "Y\n"}, True),
        ({"sys/module/kvm_intel/parameters/enable_apicv": "N\n"}, False),
        ({"sys/module/kvm_amd/parameters/avic": "1\n"}, True),
        ({"sys/module/kvm_amd/parameters/avic": "0\n"}, False),
        ({"sys/module/kvm_amd/parameters/avic": "garbage\n"}, None),
        ({"sys/module/kvm/parameters/halt_poll_ns": "200000\n"}, None),
    ],
    ids=["intel-Y", "intel-N", "amd-1", "amd-0", "garbage", "no-vendor-module"],
)
def test_apicv(tmp_path: Path, files: dict[str, str], expected: bool | None) -> None:
    for rel, text in files.items():
        _write(tmp_path, rel, text)
    assert probe_host_caps(tmp_path).apicv is expected


def test_cgroup_v2(tmp_path: Path) -> None:
    _write(tmp_path, "sys/fs/cgroup/cgroup.controllers", "cpuset cpu io memory pids\n")
    caps = probe_host_caps(tmp_path)
    assert (caps.cgroup_version, caps.rt_runtime_us, caps.rt_runtime_path) == (2, None, None)


@pytest.mark.parametrize(
    ("files", "rt", "path"),
    [
        # systemd host: machine.slice under the joint cpu,cpuacct hierarchy, no RT budget
        (
            {"cpu,cpuacct/cpu.rt_runtime_us": "950000", "cpu,cpuacct/machine.slice/cpu.rt_runtime_us": "0"},
            0,
            "/sys/fs/cgroup/cpu,cpuacct/machine.slice/cpu.rt_runtime_us",
        ),
        # the fix applied
        (
            {
                "cpu,cpuacct/cpu.rt_runtime_us": "950000",
                "cpu,cpuacct/machine.slice/cpu.rt_runtime_us": "950000",
            },
            950000,
            "/sys/fs/cgroup/cpu,cpuacct/machine.slice/cpu.rt_runtime_us",
        ),
        # libvirt without systemd (this machine): /machine under a separate cpu hierarchy
        (
            {"cpu/cpu.rt_runtime_us": "950000", "cpu/machine/cpu.rt_runtime_us": "0"},
            0,
            "/sys/fs/cgroup/cpu/machine/cpu.rt_runtime_us",
        ),
        # RT group scheduling compiled in, slice not created yet: it will start with 0
        (
            {"cpu,cpuacct/cpu.rt_runtime_us": "950000"},
            0,
            "/sys/fs/cgroup/cpu,cpuacct/machine.slice/cpu.rt_runtime_us",
        ),
        # no CONFIG_RT_GROUP_SCHED (RHEL, Debian): no rt files, FIFO works
        ({"cpu,cpuacct/cpu.shares": "1024"}, None, None),
    ],
    ids=["slice-0", "slice-950000", "machine-0", "slice-missing", "no-rt-group-sched"],
)
def test_cgroup_v1_rt_runtime(
    tmp_path: Path, files: dict[str, str], rt: int | None, path: str | None
) -> None:
    for rel, text in files.items():
        _write(tmp_path, "sys/fs/cgroup/" + rel, text + "\n")
    caps = probe_host_caps(tmp_path)
    assert caps.cgroup_version == 1
    assert caps.rt_runtime_us == rt
    assert caps.rt_runtime_path == path


@pytest.mark.parametrize(("sysctl", "rt"), [("-1", None), ("950000", 0)], ids=["unlimited", "enforced"])
def test_rt_bandwidth_off_makes_the_slice_budget_moot(tmp_path: Path, sysctl: str, rt: int | None) -> None:
    """``kernel.sched_rt_runtime_us = -1``: the kernel checks no group's RT runtime, FIFO starts anywhere."""
    _write(tmp_path, "sys/fs/cgroup/cpu/cpu.rt_runtime_us", "950000\n")
    _write(tmp_path, "sys/fs/cgroup/cpu/machine/cpu.rt_runtime_us", "0\n")
    _write(tmp_path, "proc/sys/kernel/sched_rt_runtime_us", sysctl + "\n")
    caps = probe_host_caps(tmp_path)
    assert (caps.cgroup_version, caps.rt_runtime_us) == (1, rt)


def test_empty_root_knows_nothing(tmp_path: Path) -> None:
    caps = probe_host_caps(tmp_path)
    assert caps == HostCaps(source=f"probes of {tmp_path}")


def test_pci_numa_nodes_skip_minus_one(tmp_path: Path) -> None:
    _write(tmp_path, "sys/bus/pci/devices/0000:3b:00.0/numa_node", "1\n")
    _write(tmp_path, "sys/bus/pci/devices/0000:00:1f.0/numa_node", "-1\n")
    _write(tmp_path, "sys/bus/pci/devices/0000:00:02.0/numa_node", "0\n")
    caps = probe_host_caps(tmp_path)
    assert caps.pci_numa == (("0000:00:02.0", 0), ("0000:3b:00.0", 1))
    assert caps.pci_node("0000:3b:00.0") == 1
    assert caps.pci_node("0000:00:1f.0") is None


def test_merge_takes_domcaps_then_probes() -> None:
    dom = HostCaps(source="d.xml", hyperv=frozenset({"spinlocks"}), cpu_vendor="AMD", domain_type="kvm")
    probes = HostCaps(
        source="probes of /", apicv=False, cgroup_version=1, rt_runtime_us=0, cpu_vendor="Intel"
    )
    merged = merge_caps(dom, probes)
    assert merged is not None
    assert merged.hyperv == {"spinlocks"}
    assert merged.cpu_vendor == "AMD"  # the first source that knows wins
    assert (merged.apicv, merged.cgroup_version, merged.rt_runtime_us) == (False, 1, 0)
    assert merged.source == "d.xml + probes of /"
    assert merge_caps(None, None) is None
    assert merge_caps(None, probes) == probes


def test_this_machine_probe_is_consistent() -> None:
    """The live probe never raises and reports a cgroup version on a Linux host."""
    caps = probe_host_caps()
    if Path("/sys/fs/cgroup").is_dir():
        assert caps.cgroup_version in (1, 2)
    if caps.cgroup_version == 2:
        assert caps.rt_runtime_us is None


# -- the MSR 0x10a probe ------------------------------------------------------------------------------------

EMULATOR = "/usr/bin/qemu-system-x86_64"
_REFUSES = "echo 'qemu-system-x86_64: error: failed to set MSR 0x10a to 0x69' >&2; exit 134"
_TAKES = "cat >/dev/null; exit 0"


def _host(root: Path, script: str, *, nested: bool = True) -> Path:
    """A fake root whose emulator is a shell script, with a kernel release and a cpuinfo flags line."""
    _write(root, "proc/sys/kernel/osrelease", "6.1.0-test\n")
    _write(root, "proc/cpuinfo", f"flags\t\t: fpu {'hypervisor ' if nested else ''}lahf_lm\n")
    _write(root, EMULATOR.lstrip("/"), f"#!/bin/sh\n{script}\n")
    emulator = root / EMULATOR.lstrip("/")
    emulator.chmod(0o755)
    return emulator


@pytest.mark.parametrize(
    ("script", "expected"), [(_REFUSES, False), (_TAKES, True)], ids=["refused", "taken"]
)
def test_msr_probe_is_cached_and_read_back(tmp_path: Path, script: str, expected: bool) -> None:
    _host(tmp_path, script)
    assert probe_host_caps(tmp_path).arch_capabilities_msr is None  # readers never start QEMU
    assert probe_host_caps(tmp_path, emulator=EMULATOR).arch_capabilities_msr is expected
    cached = json.loads((tmp_path / CPU_PROBE).read_text())
    assert (cached["kernel"], cached["emulator"], cached["arch_capabilities_msr"]) == (
        "6.1.0-test",
        EMULATOR,
        expected,
    )
    assert probe_host_caps(tmp_path).arch_capabilities_msr is expected


def test_msr_cache_follows_the_kernel_and_the_emulator(tmp_path: Path) -> None:
    emulator = _host(tmp_path, _TAKES)
    assert record_msr_probe(EMULATOR, tmp_path) is True
    stat = emulator.stat()
    emulator.write_text(f"#!/bin/sh\n{_REFUSES}\n")
    os.utime(emulator, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert record_msr_probe(EMULATOR, tmp_path) is True  # same binary as far as the key knows: cached
    os.utime(emulator, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # a QEMU update
    assert probe_host_caps(tmp_path).arch_capabilities_msr is None
    assert record_msr_probe(EMULATOR, tmp_path) is False
    _write(tmp_path, "proc/sys/kernel/osrelease", "6.2.0-test\n")  # a new kernel
    assert probe_host_caps(tmp_path).arch_capabilities_msr is None


@pytest.mark.parametrize(
    ("script", "nested"),
    [("echo 'Could not access KVM kernel module' >&2; exit 1", True), (_REFUSES, False)],
    ids=["no-kvm", "bare-metal"],
)
def test_msr_probe_unanswered_is_not_cached(tmp_path: Path, script: str, nested: bool) -> None:
    _host(tmp_path, script, nested=nested)
    assert probe_host_caps(tmp_path, emulator=EMULATOR).arch_capabilities_msr is None
    assert not (tmp_path / CPU_PROBE).exists()


def test_msr_probe_without_the_emulator_is_unknown(tmp_path: Path) -> None:
    _host(tmp_path, _TAKES)
    assert record_msr_probe("/usr/libexec/qemu-kvm", tmp_path) is None
    _write(tmp_path, str(CPU_PROBE), "{not json")
    assert probe_host_caps(tmp_path).arch_capabilities_msr is None
