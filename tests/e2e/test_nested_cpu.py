"""Nested KVM: a host CPU mode starts only with arch-capabilities disabled, and `--profile latency` adds it.

On this dev machine (nested KVM on AMD EPYC, libvirt 9.0, QEMU 7.2) ``<cpu mode='host-passthrough'>`` or
``host-model`` dies at start with ``failed to set MSR 0x10a`` (scripts/LIBVIRT-NOTES.md). vmtune sees the
nesting in the host CPU's ``hypervisor`` flag and writes ``<feature policy='disable'
name='arch-capabilities'/>``; these tests define the XML vmtune produced, start it on the real libvirtd and
read QEMU's real ``-cpu`` argument. On a bare-metal host the feature must not be written (the guest would
lose the CPU's not-affected bits for nothing); the plain host CPU control then only runs on nested hosts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from e2ehelp import URI, Libvirt, qemu_pid, record, vcpu_affinity, vmtune
from lxml import etree

pytestmark = pytest.mark.e2e


def _nested() -> bool:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            return "hypervisor" in line.split(":", 1)[1].split()
    return False


NESTED = _nested()

PLAIN = """<domain type='{type}'>
  <name>NAME</name>
  <memory unit='MiB'>128</memory>
  <vcpu placement='static'>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <features><acpi/></features>
  {cpu}
  <devices><memballoon model='none'/></devices>
</domain>
"""


def _qemu_cpu_arg(name: str) -> str:
    args = Path(f"/proc/{qemu_pid(name)}/cmdline").read_bytes().split(b"\0")
    return args[args.index(b"-cpu") + 1].decode()


def _still_running(lv: Libvirt, name: str, seconds: float = 2.0) -> bool:
    """QEMU may die right after ``create()`` returns; wait a moment before calling the start a success."""
    time.sleep(seconds)
    return bool(lv.conn.lookupByName(name).isActive())


@pytest.mark.parametrize("mode", ["host-passthrough", "host-model"])
def test_plain_host_cpu_dies_here(
    libvirt_session: Libvirt, make_guest: Callable[..., str], mode: str
) -> None:
    """The control: the failure vmtune's gate exists for (fails loudly if QEMU or the host changes)."""
    if not (NESTED and libvirt_session.domain_type == "kvm"):
        pytest.skip("not nested KVM: a plain host CPU mode starts here")
    xml = PLAIN.format(type="kvm", cpu=f"<cpu mode='{mode}' check='none'/>")
    dom = libvirt_session.conn.lookupByName(make_guest(vcpus=1, xml=xml))
    with pytest.raises(libvirt_session.lv.libvirtError) as failed:
        dom.create()
    record(f"plain {mode}: {str(failed.value).splitlines()[0][-120:]}")
    assert "failed to set MSR 0x10a" in str(failed.value)


@pytest.mark.parametrize("how", ["connect", "offline"])
def test_latency_guest_starts(
    libvirt_session: Libvirt, make_guest: Callable[..., str], tmp_path: Path, how: str
) -> None:
    """`apply --profile latency` through libvirt, or on a file then `virsh define`: the guest boots."""
    lv = libvirt_session
    name = make_guest(vcpus=1)
    if how == "connect":
        res = vmtune("apply", "--connect", URI, "--domain", name, "--profile", "latency")
    else:
        src, out = tmp_path / "in.xml", tmp_path / "out.xml"
        src.write_text(lv.conn.lookupByName(name).XMLDesc(lv.lv.VIR_DOMAIN_XML_INACTIVE))
        res = vmtune("apply", str(src), "--profile", "latency", "-o", str(out))
        if res.returncode == 0:
            lv.conn.defineXMLFlags(out.read_text(), lv.lv.VIR_DOMAIN_DEFINE_VALIDATE)
    assert res.returncode == 0, res.stderr
    gated = NESTED and lv.domain_type == "kvm"
    assert ("failed to set MSR 0x10a" in res.stderr) is gated  # the note says why
    root = etree.fromstring(lv.conn.lookupByName(name).XMLDesc(lv.lv.VIR_DOMAIN_XML_INACTIVE).encode())
    policies = {f.get("name"): f.get("policy") for f in root.iterfind("cpu/feature")}
    assert (policies.get("arch-capabilities") == "disable") is gated
    lv.conn.lookupByName(name).create()
    assert _still_running(lv, name)
    cpu_arg = _qemu_cpu_arg(name)
    record(f"{name} ({how}): -cpu {cpu_arg}; vCPU affinity {vcpu_affinity(name)}")
    assert ("arch-capabilities=off" in cpu_arg) is gated
    assert vcpu_affinity(name) == {0: "1"}
