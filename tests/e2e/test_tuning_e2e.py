"""Every profile's XML validates against libvirt's schema and the real libvirtd defines it; Windows gating.

Each (domain, domcapabilities, profile) is planned by ``vmtune apply`` on a named host, validated with
``virt-xml-validate`` (libvirt's RelaxNG schemas) and defined on the e2e libvirtd under a throw-away name,
then undefined. The Windows guest is also *started*, planned with this host's live domcapabilities: it
must boot. Where the live domcapabilities list the Hyper-V enlightenments KVM offers and that list lacks
some, the same guest planned as if every enlightenment were there is refused at start: the failure the
gate exists to prevent.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from e2ehelp import MEASURED, URI, Libvirt, vmtune
from lxml import etree

from testutil import DATA
from vmtune.adapters.probes import probe_host_caps
from vmtune.core.tuning.hyperv import EVERYWHERE

HOST = DATA / "hosts" / "dual-skylake-ht-interleaved"
PROFILES = ("balanced", "latency", "realtime", "windows")
DOMAINS = ("win11-desktop", "linux-server", "realtime-nfv")
DOMCAPS = ("this-machine-kvm", "full-hyperv")

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def validator() -> str:
    found = shutil.which("virt-xml-validate")
    if found is None:
        pytest.skip("virt-xml-validate is not installed (libvirt-clients)")
    return found


def _renamed(path: Path, name: str) -> str:
    tree = etree.parse(str(path))
    root = tree.getroot()
    root.find("name").text = name  # type: ignore[union-attr]
    for old in root.findall("uuid"):
        root.remove(old)
    return etree.tostring(root, encoding="unicode")


CASES = [(d, c, p) for d in DOMAINS for c in DOMCAPS for p in PROFILES]


@pytest.mark.parametrize(("dom", "caps", "profile"), CASES, ids=["--".join(c) for c in CASES])
def test_profile_xml_validates_and_defines(  # noqa: PLR0917 - fixtures plus one parameter per table column
    libvirt_session: Libvirt, make_guest: Callable[..., str], validator: str, tmp_path: Path,
    dom: str, caps: str, profile: str,
) -> None:  # fmt: skip
    out = tmp_path / f"{dom}.xml"
    args = [
        "apply", str(DATA / "domains" / f"{dom}.xml"), "--profile", profile, "--sysfs", str(HOST),
        "--domcapabilities", str(DATA / "domcapabilities" / f"{caps}.xml"), "-o", str(out),
    ]  # fmt: skip
    if profile == "realtime":
        args.append("--force")  # the named host has too few free 1G pages for the bigger guests
    res = vmtune(*args)
    assert res.returncode == 0, res.stderr
    valid = subprocess.run([validator, str(out), "domain"], capture_output=True, text=True, check=False)
    assert valid.returncode == 0, valid.stderr + valid.stdout
    make_guest(vcpus=0, xml=_renamed(out, "NAME"))


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
  <devices><emulator>{emulator}</emulator></devices>
</domain>
"""


def _listed_hyperv(domcaps: str) -> set[str] | None:
    """The enlightenments the live domcapabilities list; None when libvirt does not list them."""
    hv = etree.fromstring(domcaps.encode()).find("features/hyperv")
    if hv is None or hv.get("supported") != "yes" or hv.find("enum[@name='features']") is None:
        return None
    return {str(v) for v in hv.xpath("enum[@name='features']/value/text()")}  # type: ignore[union-attr]


def _windows_guest(make_guest: Callable[..., str], tmp_path: Path, domcaps: Path, emulator: str) -> str:
    """A small Windows guest planned with ``--profile windows`` for ``domcaps``, defined; returns its name."""
    src, out = tmp_path / "in.xml", tmp_path / "out.xml"
    src.write_text(SMALL_WIN.format(emulator=emulator))
    res = vmtune(
        "apply", str(src), "--profile", "windows", "--sysfs", "/",
        "--domcapabilities", str(domcaps), "-o", str(out),
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    return make_guest(vcpus=1, xml=out.read_text())


@pytest.mark.parametrize("caps", ["live", "full-hyperv"])
def test_windows_gate_decides_whether_the_guest_starts_here(
    libvirt_session: Libvirt, make_guest: Callable[..., str], tmp_path: Path, caps: str
) -> None:
    lv = libvirt_session
    if lv.domain_type != "kvm":
        pytest.skip("no usable /dev/kvm: Hyper-V enlightenments need KVM")
    live = lv.conn.getDomainCapabilities(None, "x86_64", "q35", "kvm", 0)
    listed = _listed_hyperv(live)
    starts = caps == "live"
    if not starts and (listed is None or listed >= {"relaxed", "vapic", "vpindex", "synic", "stimer"}):
        pytest.skip("this host's KVM offers (or libvirt does not list) the enlightenments: nothing to refuse")
    domcaps = tmp_path / "live-domcaps.xml"
    domcaps.write_text(live)
    if not starts:
        domcaps = DATA / "domcapabilities" / "full-hyperv.xml"
    emulator = etree.fromstring(live.encode()).findtext("path") or "/usr/bin/qemu-system-x86_64"
    name = _windows_guest(make_guest, tmp_path, domcaps, emulator)
    try:
        lv.conn.lookupByName(name).create()
        error = ""
    except lv.lv.libvirtError as err:
        error = str(err)
    assert (error == "") is starts, error


@pytest.mark.parametrize("how", ["domain", "file", "local"])
def test_windows_guest_planned_here_starts(
    libvirt_session: Libvirt, make_guest: Callable[..., str], tmp_path: Path, how: str
) -> None:
    """No --domcapabilities: `apply --connect URI --domain` and `apply FILE --connect URI` read them through a
    connection allowed to (read-write: root here); a local plan without them writes only what every KVM
    host provides. Each guest must start on this libvirtd."""
    lv = libvirt_session
    if lv.domain_type != "kvm":
        pytest.skip("no usable /dev/kvm: Hyper-V enlightenments need KVM")
    live = lv.conn.getDomainCapabilities(None, "x86_64", "q35", "kvm", 0)
    emulator = etree.fromstring(live.encode()).findtext("path") or "/usr/bin/qemu-system-x86_64"
    body = SMALL_WIN.format(emulator=emulator)
    if how == "domain":
        name = make_guest(vcpus=1, xml=body)
        res = vmtune("apply", "--connect", URI, "--domain", name, "--profile", "windows")
    else:
        src, out = tmp_path / "in.xml", tmp_path / "out.xml"
        src.write_text(body)
        host = ["--connect", URI] if how == "file" else ["--sysfs", "/"]
        res = vmtune("apply", str(src), "--profile", "windows", *host, "-o", str(out))
        assert res.returncode == 0, res.stderr
        name = make_guest(vcpus=1, xml=out.read_text())
    assert res.returncode == 0, res.stderr
    dom = lv.conn.lookupByName(name)
    written = etree.fromstring(dom.XMLDesc(lv.lv.VIR_DOMAIN_XML_INACTIVE).encode())
    hyperv = {e.tag for e in written.iterfind("features/hyperv/*") if e.get("state") == "on"}
    listed = _listed_hyperv(live)
    if how == "local":
        assert hyperv <= EVERYWHERE and "not every KVM host provides" in res.stderr
    elif listed is not None:
        assert hyperv <= listed, res.stderr
    try:
        dom.create()
        error = ""
    except lv.lv.libvirtError as err:
        error = str(err)
    MEASURED.append(f"windows guest, apply ({how}, no --domcapabilities): hyperv {sorted(hyperv)}, "
                    f"start: {error or 'ok'}")  # fmt: skip
    assert error == "", error


RT_GUEST = """<domain type='kvm'>
  <name>rt</name>
  <memory unit='MiB'>256</memory>
  <vcpu>2</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type></os>
</domain>
"""


def test_realtime_plan_on_this_host_follows_its_rt_runtime(tmp_path: Path) -> None:
    """cgroup v1 with no RT runtime for the machine slice: a realtime plan exits 3 (its FIFO vCPUs would
    stop the start); --force writes it. The expectation comes from the live probe. The e2e machines may be
    too small to place a realtime guest at all, so the topology is a 16-CPU fixture and the cgroup files
    the probe reads are this host's, copied as they are."""
    caps = probe_host_caps(Path("/"))
    if not (caps.cgroup_version == 1 and caps.rt_runtime_us == 0 and caps.rt_runtime_path):
        pytest.skip(f"this host gives guests RT runtime (cgroup v{caps.cgroup_version}): nothing to refuse")
    root = tmp_path / "host"
    shutil.copytree(DATA / "hosts" / "dual-skylake-ht-interleaved", root, symlinks=True)
    live = Path(caps.rt_runtime_path)
    mirrored = root / live.relative_to("/")
    mirrored.parent.mkdir(parents=True, exist_ok=True)
    mirrored.write_text(live.read_text() if live.exists() else "0\n")  # absent: created with 0 at start
    (root / "sys/fs/cgroup/cgroup.controllers").unlink(missing_ok=True)
    src = tmp_path / "rt.xml"
    src.write_text(RT_GUEST)
    args = ["plan", str(src), "--sysfs", str(root), "--profile", "realtime", "--hugepages", "none"]
    res = vmtune(*args)
    MEASURED.append(f"realtime plan with this host's cgroups (v1, {live} = {caps.rt_runtime_us}): "
                    f"exit {res.returncode}")  # fmt: skip
    assert res.returncode == 3, res.stderr
    assert "needs RT runtime" in res.stderr and f"echo 950000 > {live}" in res.stderr
    forced = vmtune(*args, "--force")
    assert forced.returncode == 0, forced.stderr
    assert "<vcpusched" in forced.stdout


WIDE = """<domain type='kvm'>
  <name>NAME</name>
  <memory unit='GiB'>4</memory>
  <vcpu>24</vcpu>
  <os><type arch='x86_64'>hvm</type></os>
</domain>
"""


def test_wide_guest_cells_carry_the_host_distances(
    libvirt_session: Libvirt, make_guest: Callable[..., str], validator: str, tmp_path: Path
) -> None:
    """A guest wider than a node of the named host gets a cell per node with ``<distances>`` copied from
    the host's SLIT (sysfs ``nodeN/distance``); libvirt's schema and libvirtd accept them and keep them."""
    src, out = tmp_path / "wide.xml", tmp_path / "out.xml"
    src.write_text(WIDE)
    res = vmtune("apply", str(src), "--sysfs", str(HOST), "-o", str(out))
    assert res.returncode == 0, res.stderr
    valid = subprocess.run([validator, str(out), "domain"], capture_output=True, text=True, check=False)
    assert valid.returncode == 0, valid.stderr + valid.stdout
    slit = [(HOST / "sys/devices/system/node" / f"node{n}" / "distance").read_text().split() for n in (0, 1)]
    name = make_guest(vcpus=0, xml=_renamed(out, "NAME"))
    defined = etree.fromstring(libvirt_session.conn.lookupByName(name).XMLDesc(0).encode())
    cells = defined.findall("cpu/numa/cell")
    assert len(cells) == 2
    seen = [[(s.get("id"), s.get("value")) for s in c.findall("distances/sibling")] for c in cells]
    assert seen == [[("0", row[0]), ("1", row[1])] for row in slit]
