"""Fleet mode against the real libvirtd: `vmtune check|host -c qemu:///system -c test:///default -c BAD`.

Two defined guests on qemu:///system carry vmtune's latency intent and the same exclusive pin (a stale
copy of a tuned guest): `check --all` must report VT104 on that host (exit 5), the test-driver hosts stay
clean, and an unreachable URI makes the whole run exit 4 while the others are still reported.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from e2ehelp import URI, Libvirt, record, spare_pins, vmtune

from vmtune.cpuset import CpuSet

pytestmark = pytest.mark.e2e

TEST = "test:///default"
BAD = "qemu+ssh://vmtune-no-such-host.invalid/system"

PINNED = """<domain type='{type}'>
  <name>NAME</name>
  <metadata>
    <vmtune:tuning xmlns:vmtune='https://vmtune.dev/xmlns/1' profile='latency'/>
  </metadata>
  <memory unit='MiB'>128</memory>
  <vcpu placement='static'>1</vcpu>
  <cputune><vcpupin vcpu='0' cpuset='{vcpu}'/><emulatorpin cpuset='{emulator}'/></cputune>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices><memballoon model='none'/></devices>
</domain>
"""


def test_check_fleet_real_and_test_hosts(libvirt_session: Libvirt, make_guest: Callable[..., str]) -> None:
    names = [
        make_guest(vcpus=1, xml=PINNED.format(type=libvirt_session.domain_type, **spare_pins()))
        for _ in range(2)
    ]
    res = vmtune("check", "-c", URI, "-c", TEST, "-c", TEST, "--all", "--select", "VT104", "--json")
    assert res.returncode == 5, res.stderr
    doc = json.loads(res.stdout)
    real, *mocks = doc["hosts"]
    assert real["uri"] == URI and real["exit"] == 5
    flagged = {f["guest"] for f in real["findings"] if f["code"] == "VT104"}
    assert set(names) <= flagged
    assert [(m["reachable"], m["exit"]) for m in mocks] == [(True, 0), (True, 0)]
    record(f"fleet: {URI} {real['seconds']}s ({real['summary']['guests']} guests), "
          f"{TEST} {[m['seconds'] for m in mocks]}")  # fmt: skip

    res = vmtune("check", "-c", URI, "-c", TEST, "-c", BAD, "--all", "--select", "VT104")
    assert res.returncode == 4, res.stderr  # unreachable beats findings: the run is incomplete
    assert f"connect to {BAD}" in res.stderr
    assert "3 host(s): 2 reachable, 1 unreachable; exit 4" in res.stdout


def test_host_fleet_real_and_test_hosts(libvirt_session: Libvirt) -> None:
    res = vmtune("host", "-c", URI, "-c", TEST, "-c", BAD, "--json")
    assert res.returncode == 4, res.stderr
    hosts = json.loads(res.stdout)["hosts"]
    assert [h["reachable"] for h in hosts] == [True, True, False]
    real = hosts[0]["host"]["summary"]
    online = CpuSet.parse(Path("/sys/devices/system/cpu/online").read_text().strip())
    assert real["threads"] == len(online)  # this machine, read through libvirt's getCapabilities
    record(f"host fleet: {[(h['uri'], h['seconds']) for h in hosts]}")
