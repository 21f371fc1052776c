"""End to end: every profile's XML validates against libvirt's schema and a real libvirtd defines it.

Each (domain, domcapabilities, profile) is planned by ``vmtune apply`` on a named host, validated with
``virt-xml-validate`` (libvirt's RelaxNG schemas) and defined on ``qemu:///system`` under a throw-away
name, then undefined. On this machine (nested KVM) the Windows guest is also *started*: the gated XML
(this machine's domcapabilities) boots, the ungated one (every enlightenment) is refused by KVM, which is
the failure the gate exists to prevent. Skipped when virsh or libvirtd is not available
(scripts/libvirt-up.sh starts one).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from lxml import etree

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data"
HOST = DATA / "hosts" / "dual-skylake-ht-interleaved"
URI = "qemu:///system"
PROFILES = ("balanced", "latency", "realtime", "windows")
DOMAINS = ("win11-desktop", "linux-server", "realtime-nfv")
DOMCAPS = ("this-machine-kvm", "full-hyperv")

pytestmark = pytest.mark.e2e


def _run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def libvirtd() -> str:
    if shutil.which("virsh") is None or shutil.which("virt-xml-validate") is None:
        pytest.skip("virsh / virt-xml-validate not installed")
    if _run("virsh", "-c", URI, "version", timeout=20).returncode != 0:
        pytest.skip(f"no libvirtd answers on {URI} (scripts/libvirt-up.sh)")
    return URI


def _vmtune(*args: str) -> subprocess.CompletedProcess[str]:
    return _run(sys.executable, "-m", "vmtune", *args)


def _rename(path: Path, name: str) -> None:
    tree = etree.parse(str(path))
    root = tree.getroot()
    root.find("name").text = name  # type: ignore[union-attr]
    for old in root.findall("uuid"):
        root.remove(old)
    tree.write(str(path))


def _define_and_undefine(path: Path, name: str) -> tuple[int, str]:
    res = _run("virsh", "-c", URI, "define", str(path))
    if res.returncode == 0:
        _run("virsh", "-c", URI, "undefine", name, "--nvram")
    return res.returncode, (res.stderr or res.stdout).strip()


CASES = [(d, c, p) for d in DOMAINS for c in DOMCAPS for p in PROFILES]


@pytest.mark.parametrize(("dom", "caps", "profile"), CASES, ids=["--".join(c) for c in CASES])
def test_profile_xml_validates_and_defines(
    libvirtd: str, tmp_path: Path, dom: str, caps: str, profile: str
) -> None:
    out = tmp_path / f"{dom}.xml"
    args = [
        "apply", str(DATA / "domains" / f"{dom}.xml"), "--profile", profile, "--sysfs", str(HOST),
        "--domcapabilities", str(DATA / "domcapabilities" / f"{caps}.xml"), "-o", str(out),
    ]  # fmt: skip
    if profile == "realtime":
        args.append("--force")  # the named host has too few free 1G pages for the bigger guests
    res = _vmtune(*args)
    assert res.returncode == 0, res.stderr
    valid = _run("virt-xml-validate", str(out), "domain")
    assert valid.returncode == 0, valid.stderr + valid.stdout
    name = f"vmtune-e2e-{uuid.uuid4().hex[:8]}"
    _rename(out, name)
    rc, msg = _define_and_undefine(out, name)
    assert rc == 0, msg


SMALL_WIN = """<domain type='kvm'>
  <name>NAME</name>
  <metadata>
    <libosinfo:libosinfo xmlns:libosinfo='http://libosinfo.org/xmlns/libvirt/domain/1.0'>
      <libosinfo:os id='http://microsoft.com/win/11'/>
    </libosinfo:libosinfo>
  </metadata>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type></os>
  <features><acpi/><apic/></features>
  <devices><emulator>/usr/bin/qemu-system-x86_64</emulator></devices>
</domain>
"""


@pytest.mark.parametrize(("caps", "starts"), [("this-machine-kvm", True), ("full-hyperv", False)])
def test_windows_gate_decides_whether_the_guest_starts_here(
    libvirtd: str, tmp_path: Path, caps: str, starts: bool
) -> None:
    kvm = Path("/dev/kvm")
    if not kvm.exists():
        pytest.skip("no /dev/kvm")
    domcaps = DATA / "domcapabilities" / "this-machine-kvm.xml"
    live = _run("virsh", "-c", URI, "domcapabilities", "--virttype", "kvm")
    if live.returncode != 0 or "<value>relaxed</value>" in live.stdout:
        pytest.skip("this host's KVM offers Hyper-V enlightenments: the nested-KVM gate can't be shown here")
    name = f"vmtune-e2e-win-{uuid.uuid4().hex[:8]}"
    src = tmp_path / "in.xml"
    src.write_text(SMALL_WIN.replace("NAME", name))
    out = tmp_path / "out.xml"
    res = _vmtune(
        "apply", str(src), "--profile", "windows", "--sysfs", "/",
        "--domcapabilities", str(DATA / "domcapabilities" / f"{caps}.xml"), "-o", str(out),
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert domcaps.exists()
    defined = _run("virsh", "-c", URI, "define", str(out))
    assert defined.returncode == 0, defined.stderr
    try:
        started = _run("virsh", "-c", URI, "start", name, timeout=60)
        assert (started.returncode == 0) is starts, started.stderr
    finally:
        _run("virsh", "-c", URI, "destroy", name)
        _run("virsh", "-c", URI, "undefine", name, "--nvram")
