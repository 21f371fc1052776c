"""``--cache-share`` against the real libvirtd: what it does with a planned ``<cachetune>``, and a host
without resctrl getting none.

The 2-guest plan comes from a test root written like the kernel's (a one-socket 11-way L3 of 27.5 MiB,
``cbm_mask`` 7ff, the default group keeping 5 ways), since a host with RDT CAT can't be assumed here. Each
guest's XML is handed to ``virsh define``; what libvirt keeps is read back with ``virsh dumpxml
--inactive`` and compared as vmtune compares after its own define. Starting it is asserted from this
host's own state: without ``/sys/fs/resctrl`` libvirt must refuse the start (it makes the resctrl group
before QEMU runs); with it, the test skips the start (it would take real cache ways from this host).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from e2ehelp import URI, Libvirt, record, vmtune

from resctrlgen import SKX, write_resctrl
from sysfsgen import write_sysfs
from vmtune.core.intent.model import CacheShare
from vmtune.core.plan import Plan
from vmtune.core.verify.readback import owned_mismatches
from vmtune.xmlmap.guest import read_guest

pytestmark = pytest.mark.e2e
RESCTRL = Path("/sys/fs/resctrl/info")
GUEST = """<domain type='{type}'>
  <name>{name}</name>
  <memory unit='MiB'>128</memory>
  <vcpu placement='static'>2</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices><memballoon model='none'/></devices>
</domain>
"""


def virsh(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["virsh", "-c", URI, *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_two_guest_cachetunes_define_on_the_real_libvirtd(
    libvirt_session: Libvirt, make_guest: Callable[..., str], tmp_path: Path
) -> None:
    root, tenants = tmp_path / "host", tmp_path / "tenants"
    write_sysfs(SKX, root)
    write_resctrl(root, default={0: 0x1F})
    tenants.mkdir()
    for i in (1, 2):
        name = make_guest(vcpus=2)  # a throw-away name the fixture removes after the test
        assert virsh("undefine", name).returncode == 0  # the planned XML is defined by virsh under it
        src = tmp_path / f"g{i}.xml"
        src.write_text(GUEST.format(type=libvirt_session.domain_type, name=name))
        out = tenants / f"g{i}.xml"
        res = vmtune(
            "apply",
            str(src),
            "--sysfs",
            str(root),
            "--domains",
            str(tenants),
            "--profile",
            "latency",
            "--cache-share",
            "25%",
            "-o",
            str(out),
        )
        assert res.returncode == 0, res.stderr
        planned = out.read_text()
        assert "<cache id='0' level='3' type='both' size='7680' unit='KiB'/>" in planned
        defined = virsh("define", str(out))
        assert defined.returncode == 0, defined.stderr
        back = virsh("dumpxml", "--inactive", name)
        assert back.returncode == 0, back.stderr
        guest = read_guest(back.stdout, source=f"libvirt:{name}")
        assert owned_mismatches(_owned(planned, out), guest) == ()
        tune = back.stdout[back.stdout.index("<cachetune") : back.stdout.index("</cachetune>") + 12]
        record(f"{name}: virsh define kept {' '.join(tune.split())}")
    if RESCTRL.is_dir():
        return  # a real RDT host: starting would take real ways from it
    # the planned pins are the test host's; on this host only the cachetune is tried
    name = make_guest(vcpus=2)
    only = GUEST.format(type=libvirt_session.domain_type, name=name).replace(
        "<os>", f"<cputune>{tune}</cputune>\n  <os>"
    )
    (tmp_path / "only.xml").write_text(only)
    assert virsh("undefine", name).returncode == 0
    assert virsh("define", str(tmp_path / "only.xml")).returncode == 0
    started = virsh("start", name)
    why = " ".join(started.stderr.split())
    record(f"{name}: virsh start of a guest with that <cachetune> here (no /sys/fs/resctrl): {why}")
    assert started.returncode != 0
    assert "Resource control is not supported on this host" in why, why


def _owned(planned: str, out: Path) -> Plan:
    """The planned file's pins and cachetune as the Plan ``owned_mismatches`` compares a read-back with."""
    g = read_guest(planned, source=str(out))
    return Plan(vcpupins=g.vcpupins, emulatorpin=g.emulatorpin, cachetunes=g.cachetunes)


@pytest.mark.skipif(RESCTRL.is_dir(), reason="this host has resctrl mounted: it would get a <cachetune>")
def test_this_host_without_resctrl_gets_no_cachetune(
    libvirt_session: Libvirt, make_guest: Callable[..., str]
) -> None:
    name = make_guest(vcpus=1)
    res = vmtune("apply", "--connect", URI, "--domain", name, "--cache-share", "25%", "--reserve", "")
    assert res.returncode == 0, res.stderr
    assert "--cache-share: no cache allocation on this host (/sys/fs/resctrl not mounted" in res.stderr
    xml = virsh("dumpxml", "--inactive", name).stdout
    assert "<cachetune" not in xml
    intent = read_guest(xml, source=name).intent
    assert intent is not None and intent.cache_share == CacheShare(percent=25)  # applied on a resctrl host
    record(
        f"{name}: apply --connect --cache-share 25% on this host (no resctrl): no <cachetune>, intent stored"
    )
