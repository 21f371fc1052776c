"""Host CPU guests and MSR 0x10a: expectations come from what this host's libvirt does with a plain guest.

Some nested KVM hosts refuse the IA32_ARCH_CAPABILITIES value QEMU copies into a ``-cpu host`` vCPU, and a
plain ``<cpu mode='host-passthrough'>`` guest dies at start with ``failed to set MSR 0x10a``; other hosts,
nested or not, start it. Each test first starts such a plain guest here and takes libvirt's answer as the
truth: vmtune's probe must agree with it, and the guest ``--profile latency`` produces must start whatever
the answer, with ``arch-capabilities`` disabled exactly when the plain guest was refused.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from e2ehelp import URI, Libvirt, qemu_pid, record, vcpu_affinity, vmtune
from lxml import etree

from vmtune.adapters.probes import probe_host_caps, run_msr_probe
from vmtune.errors import ExitCode
from vmtune.xmlmap.domcaps import parse_domcapabilities

pytestmark = pytest.mark.e2e

MSR_REFUSED = "failed to set MSR 0x10a"
PLAIN = """<domain type='kvm'>
  <name>NAME</name>
  <memory unit='MiB'>128</memory>
  <vcpu placement='static'>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <features><acpi/></features>
  <cpu mode='{mode}' check='none'/>
  <devices><memballoon model='none'/></devices>
</domain>
"""


def _kvm(lv: Libvirt) -> None:
    if lv.domain_type != "kvm":
        pytest.skip("no usable /dev/kvm: host CPU modes need KVM")


def _emulator(lv: Libvirt) -> str:
    xml = lv.conn.getDomainCapabilities(None, "x86_64", None, "kvm", 0)
    emulator = parse_domcapabilities(xml, source=f"{URI} domcapabilities").emulator
    assert emulator, "domcapabilities names no emulator"
    return emulator


def _plain_refused(lv: Libvirt, make_guest: Callable[..., str], mode: str) -> bool:
    """Start a plain ``mode`` guest: True when KVM refused MSR 0x10a; skips on any other failure."""
    dom = lv.conn.lookupByName(make_guest(vcpus=1, xml=PLAIN.format(mode=mode)))
    try:
        dom.create()
    except lv.lv.libvirtError as err:
        message = str(err)
        record(f"plain {mode}: refused: {message.splitlines()[0][-120:]}")
        if MSR_REFUSED not in message:
            pytest.skip(f"a plain {mode} guest does not start here, for another reason: {message}")
        return True
    started = _still_running(lv, dom.name())
    dom.destroy()
    record(f"plain {mode}: {'starts' if started else 'stopped right after its start'}")
    return False


def _still_running(lv: Libvirt, name: str, seconds: float = 2.0) -> bool:
    """QEMU may die right after ``create()`` returns; wait a moment before calling the start a success."""
    time.sleep(seconds)
    return bool(lv.conn.lookupByName(name).isActive())


def _qemu_cpu_arg(name: str) -> str:
    args = Path(f"/proc/{qemu_pid(name)}/cmdline").read_bytes().split(b"\0")
    return args[args.index(b"-cpu") + 1].decode()


@pytest.mark.parametrize("mode", ["host-passthrough", "host-model"])
def test_probe_agrees_with_libvirt(
    libvirt_session: Libvirt, make_guest: Callable[..., str], mode: str
) -> None:
    """vmtune's QEMU probe answers what a real start through libvirt shows."""
    _kvm(libvirt_session)
    refused = _plain_refused(libvirt_session, make_guest, mode)
    assert run_msr_probe(_emulator(libvirt_session)) is (not refused)


@pytest.mark.parametrize("how", ["connect", "offline"])
def test_latency_guest_starts(
    libvirt_session: Libvirt, make_guest: Callable[..., str], tmp_path: Path, how: str
) -> None:
    """`apply --profile latency` through libvirt, or on a file then `virsh define`: the guest boots."""
    lv = libvirt_session
    _kvm(lv)
    refused = _plain_refused(lv, make_guest, "host-passthrough")
    name = make_guest(vcpus=1)
    if how == "connect":
        res = vmtune("apply", "--connect", URI, "--domain", name, "--profile", "latency")
    else:
        # what `apply --connect` or `hook install --connect` leave on a host: the cached probe answer
        probe_host_caps(Path("/"), emulator=_emulator(lv))
        src, out = tmp_path / "in.xml", tmp_path / "out.xml"
        src.write_text(lv.conn.lookupByName(name).XMLDesc(lv.lv.VIR_DOMAIN_XML_INACTIVE))
        res = vmtune("apply", str(src), "--profile", "latency", "-o", str(out))
        if res.returncode == 0:
            lv.conn.defineXMLFlags(out.read_text(), lv.lv.VIR_DOMAIN_DEFINE_VALIDATE)
    if res.returncode == ExitCode.INFEASIBLE:
        pytest.skip(
            f"--profile latency has no room for one dedicated vCPU on this host: {res.stderr.strip()}"
        )
    assert res.returncode == 0, res.stderr
    assert (MSR_REFUSED in res.stderr) is refused  # the note says why
    root = etree.fromstring(lv.conn.lookupByName(name).XMLDesc(lv.lv.VIR_DOMAIN_XML_INACTIVE).encode())
    policies = {f.get("name"): f.get("policy") for f in root.iterfind("cpu/feature")}
    assert (policies.get("arch-capabilities") == "disable") is refused
    pin = root.find("cputune/vcpupin[@vcpu='0']")
    assert pin is not None
    lv.conn.lookupByName(name).create()
    assert _still_running(lv, name)
    cpu_arg = _qemu_cpu_arg(name)
    record(f"{name} ({how}): -cpu {cpu_arg}; vCPU affinity {vcpu_affinity(name)}")
    assert ("arch-capabilities=off" in cpu_arg) is refused
    assert vcpu_affinity(name) == {0: pin.get("cpuset")}
