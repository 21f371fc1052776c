"""The hook inside the real libvirtd: `vmtune hook install`, restart libvirtd, a colliding start is refused,
a two-cell guest is saved and restored through the hook's ``restore begin`` output.

libvirtd looks for hook scripts only when it starts (``virHookInitialize`` in the daemon's startup), so
this test installs ``/etc/libvirt/hooks/qemu.d/vmtune``, restarts the daemon through
``scripts/libvirt-down.sh`` + ``scripts/libvirt-up.sh`` (which keep the pids file right, so the
``make test`` teardown still stops what it started), and undoes both afterwards. It only does that to a
libvirtd that ``libvirt-up.sh`` started; another one (a developer's own) is left alone and the test
skips. Named ``test_zz_*`` so that it runs after the other e2e tests.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from e2ehelp import REQUIRED, URI, Libvirt, record, restart_daemons, spare_pins, vcpu_affinity, vmtune

from vmtune.core.verify.abi import abi_changes
from vmtune.xmlmap.guest import read_guest

pytestmark = pytest.mark.e2e

HOOKS = Path("/etc/libvirt/hooks")
PIDS = Path(os.environ.get("VMTUNE_PIDS_FILE", "/run/vmtune-test-daemons.pids"))


@pytest.fixture(scope="module")
def hook_installed(libvirt_session: Libvirt) -> Iterator[Path]:
    if not (PIDS.is_file() and any(line.startswith("libvirtd ") for line in PIDS.read_text().splitlines())):
        reason = f"libvirtd was not started by scripts/libvirt-up.sh ({PIDS}); not restarting someone else's"
        if REQUIRED:
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    target = HOOKS / "qemu.d" / "vmtune"
    existed = target.exists()
    res = vmtune("hook", "install", "--dir", str(HOOKS))
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == str(target)
    assert target.stat().st_mode & 0o777 == 0o755
    again = vmtune("hook", "install", "--dir", str(HOOKS))  # idempotent: no change, no restart hint
    assert (again.returncode, again.stderr) == (0, "")
    # libvirt reads the hugetlbfs mounts when its QEMU driver starts; without one a hugepage guest
    # fails with "hugetlbfs filesystem is not mounted". Mount one for this restart, if there is none.
    mounted = _mount_hugetlbfs()
    restart_daemons(libvirt_session)
    try:
        yield target
    finally:
        if not existed:
            target.unlink(missing_ok=True)
        if mounted:
            subprocess.run(["umount", str(HUGETLBFS)], check=False, timeout=30)
        restart_daemons(libvirt_session)


HUGETLBFS = Path("/dev/hugepages")


def _mount_hugetlbfs() -> bool:
    if any(line.split()[2:3] == ["hugetlbfs"] for line in Path("/proc/mounts").read_text().splitlines()):
        return False
    HUGETLBFS.mkdir(exist_ok=True)
    res = subprocess.run(["mount", "-t", "hugetlbfs", "hugetlbfs", str(HUGETLBFS)], capture_output=True,
                         text=True, check=False, timeout=30)  # fmt: skip
    assert res.returncode == 0, res.stderr
    return True


TWO_CELL_GUEST = """<domain type='{type}'>
  <name>NAME</name>
  <metadata>
    <vmtune:tuning xmlns:vmtune='https://vmtune.dev/xmlns/1' profile='balanced' reserve=''/>
  </metadata>
  <memory unit='MiB'>256</memory>
  <vcpu placement='static'>2</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <cpu>
    <topology sockets='2' cores='1' threads='1'/>
    <numa>
      <cell id='0' cpus='0' memory='131072' unit='KiB'/>
      <cell id='1' cpus='1' memory='131072' unit='KiB'/>
    </numa>
  </cpu>
  <devices><memballoon model='none'/></devices>
</domain>
"""


def test_two_cell_guest_saved_and_restored_through_the_hook(
    libvirt_session: Libvirt, make_guest: Callable[..., str], tmp_path: Path
) -> None:
    """libvirt checks the ABI of the hook's ``restore begin`` output against the saved guest: the hook
    re-binds (pins, numatune) and keeps the two cells, so `virsh restore --xml` accepts it.

    The hook runs from this checkout, before ``hook_installed`` puts the script in libvirtd (that script
    runs the interpreter's installed vmtune, which need not be this checkout)."""
    lv = libvirt_session
    name = make_guest(vcpus=2, xml=TWO_CELL_GUEST.format(type=lv.domain_type))
    dom = lv.conn.lookupByName(name)
    dom.create()
    image = tmp_path / f"{name}.save"
    dom.save(str(image))
    saved = lv.conn.saveImageGetXMLDesc(str(image), 0)
    # its claim goes to a private state dir: the hook run by libvirt would drop it at `started begin`
    env = {**os.environ, "VMTUNE_HOOK_STATE_DIR": str(tmp_path / "state")}
    argv = [sys.executable, "-m", "vmtune.hook", name, "restore", "begin", "-"]
    hook = subprocess.run(argv, input=saved.encode(), capture_output=True, timeout=60, check=False, env=env)
    assert hook.returncode == 0, hook.stderr.decode()
    out = hook.stdout.decode()
    assert "<vcpupin" in out, "the hook re-binds an unpinned guest"
    changes = abi_changes(read_guest(saved, source="saved"), read_guest(out, source="hook"))
    assert changes == ()
    lv.conn.restoreFlags(str(image), out, 0)
    dom = lv.conn.lookupByName(name)
    state, _ = dom.state()
    live = read_guest(dom.XMLDesc(0), source="live")
    record(f"{name}: saved, restored with the hook's restore begin output; state {state}, "
           f"{len(live.numa_cells)} cells, vCPU affinity {vcpu_affinity(name)}")  # fmt: skip
    assert state == lv.lv.VIR_DOMAIN_RUNNING
    assert [str(c.cpus) for c in live.numa_cells] == ["0", "1"]


def test_hook_refuses_colliding_start(
    hook_installed: Path, libvirt_session: Libvirt, make_guest: Callable[..., str]
) -> None:
    t0 = time.monotonic()
    first = make_guest(vcpus=1)
    res = vmtune("apply", "--connect", URI, "--domain", first, "--profile", "latency")
    assert res.returncode == 0, res.stderr
    libvirt_session.conn.lookupByName(first).create()  # the hook lets it through (nothing else runs)
    pinned = {0: _vcpu0_pin(libvirt_session, first)}
    assert vcpu_affinity(first) == pinned

    # a second guest with vmtune intent pinned to the same CPU, as a stale copy of the first would be
    xml = libvirt_session.conn.lookupByName(first).XMLDesc(libvirt_session.lv.VIR_DOMAIN_XML_INACTIVE)
    xml = xml.replace(f"<name>{first}</name>", "<name>NAME</name>")
    xml = "\n".join(line for line in xml.splitlines() if "<uuid>" not in line)
    second = make_guest(vcpus=1, xml=xml)
    dom = libvirt_session.conn.lookupByName(second)
    with pytest.raises(libvirt_session.lv.libvirtError) as refused:
        dom.create()
    message = str(refused.value)
    record(f"libvirt refused '{second}' in {time.monotonic() - t0:.1f}s: {message}")
    assert "vmtune: refusing to start" in message and "VT104" in message
    assert not dom.isActive()
    # once the first guest is gone (release end drops its claim), the same definition starts
    libvirt_session.conn.lookupByName(first).destroy()
    dom.create()
    assert vcpu_affinity(second) == pinned


def _vcpu0_pin(lv: Libvirt, name: str) -> str:
    """The CPU vmtune pinned vCPU 0 to, read back from the defined XML."""
    xml = lv.conn.lookupByName(name).XMLDesc(lv.lv.VIR_DOMAIN_XML_INACTIVE)
    found = re.search(r"<vcpupin vcpu='0' cpuset='([^']+)'/>", xml)
    assert found, xml
    return found.group(1)


HP = Path("/sys/devices/system/node/node0/hugepages/hugepages-2048kB")


def _nr_hugepages() -> int:
    return int((HP / "nr_hugepages").read_text())


def test_hook_refuses_realtime_start_this_host_cannot_run(
    hook_installed: Path, libvirt_session: Libvirt, make_guest: Callable[..., str]
) -> None:
    """cgroup v1 with rt_runtime 0 in the machine slice: QEMU would die with "Cannot set scheduler
    parameters"; the hook refuses first and says why (VT406). Skipped where the host has an RT budget."""
    probe = Path("/sys/fs/cgroup/cpu/machine/cpu.rt_runtime_us")
    if not probe.is_file() or probe.read_text().strip() != "0":
        pytest.skip(f"{probe} is not 0 here: SCHED_FIFO vCPUs can start on this host")
    name = make_guest(vcpus=2)
    res = vmtune(
        "apply", "--connect", URI, "--domain", name, "--profile", "realtime", "--reserve", "", "--force"
    )
    assert res.returncode == 0, res.stderr
    assert "VT406" in res.stderr  # apply warned already; --force wrote the FIFO vcpusched anyway
    with pytest.raises(libvirt_session.lv.libvirtError) as refused:
        libvirt_session.conn.lookupByName(name).create()
    record(f"libvirt refused realtime '{name}': {str(refused.value).split(': ', 2)[-1]}")
    assert "vmtune: refusing to start" in str(refused.value) and "VT406" in str(refused.value)


HUGE_GUEST = """<domain type='{type}'>
  <name>NAME</name>
  <metadata>
    <vmtune:tuning xmlns:vmtune='https://vmtune.dev/xmlns/1' profile='latency' hugepages='2M'/>
  </metadata>
  <memory unit='MiB'>128</memory>
  <memoryBacking><hugepages><page size='2048' unit='KiB'/></hugepages></memoryBacking>
  <vcpu placement='static'>1</vcpu>
  <cputune><vcpupin vcpu='0' cpuset='{vcpu}'/><emulatorpin cpuset='{emulator}'/></cputune>
  <numatune><memory mode='strict' nodeset='0'/></numatune>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices><memballoon model='none'/></devices>
</domain>
"""


def test_hook_reserves_and_releases_hugepages(
    hook_installed: Path, libvirt_session: Libvirt, make_guest: Callable[..., str]
) -> None:
    """A guest whose stored intent asks for 2M hugepages (`apply --hugepages 2M` writes that): the hook
    grows node 0's pool at prepare begin and gives it back at release end, through the real kernel."""
    before = _nr_hugepages()
    grow = max(0, 64 - int((HP / "free_hugepages").read_text()))  # 128 MiB / 2 MiB, minus what is free
    name = make_guest(vcpus=1, xml=HUGE_GUEST.format(type=libvirt_session.domain_type, **spare_pins()))
    dom = libvirt_session.conn.lookupByName(name)
    dom.create()
    during = _nr_hugepages()
    journal = Path("/run/vmtune/hugepages") / f"{name}.json"
    assert journal.is_file() == (grow > 0)
    dom.destroy()  # libvirt runs release end
    deadline = time.monotonic() + 10
    while _nr_hugepages() != before and time.monotonic() < deadline:
        time.sleep(0.1)
    after = _nr_hugepages()
    record(f"{name}: node0 2M hugepages before {before}, running {during}, after release {after}")
    assert during == before + grow
    assert after == before
    assert not journal.exists()
