"""A realtime guest started on the real libvirtd: the scheduler of every vCPU, the emulator's main thread, the
IOThread and KVM's ``kvm-pit/<pid>`` kernel thread read straight from ``/proc/<tid>/stat`` (fields 40/41),
then ``vmtune verify`` against them.

The guest is hand-written (vCPU 1, the emulator and IOThread 1 at SCHED_FIFO 1) and pinned to this host's
first and last online CPU. It is started paused: the schedulers are set before QEMU runs a guest
instruction, and a FIFO vCPU that never runs can't starve the CPU it sits on; it runs for one second at
the end, to read the same policies from a running guest. On cgroup v1 with RT group
scheduling the guest's cgroups get no RT runtime and libvirt's sched_setscheduler fails (VT406), so the
test lifts RT bandwidth control for its duration (``kernel.sched_rt_runtime_us = -1``, under the e2e lock)
and puts the old value back. Nothing raises the PIT thread here (the hook does that at ``started begin``),
so verify must report exactly that drift, exit 5; after ``chrt -f -p 2`` on the thread it must pass.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from e2ehelp import URI, Libvirt, qemu_pid, record, vmtune

from vmtune.adapters.probes import probe_host_caps
from vmtune.adapters.sysfs import read_sysfs
from vmtune.core.verify.compare import POLICY_NAMES

pytestmark = pytest.mark.e2e
SYSCTL = Path("/proc/sys/kernel/sched_rt_runtime_us")
GUEST = """<domain type='{type}'>
  <name>NAME</name>
  <memory unit='MiB'>128</memory>
  <vcpu placement='static'>2</vcpu>
  <iothreads>1</iothreads>
  <cputune>
    <vcpupin vcpu='0' cpuset='{first}'/>
    <vcpupin vcpu='1' cpuset='{last}'/>
    <emulatorpin cpuset='{first}'/>
    <iothreadpin iothread='1' cpuset='{first}'/>
    <emulatorsched scheduler='fifo' priority='1'/>
    <vcpusched vcpus='1' scheduler='fifo' priority='1'/>
    <iothreadsched iothreads='1' scheduler='fifo' priority='1'/>
  </cputune>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <features><acpi/></features>
  <devices><memballoon model='none'/></devices>
</domain>
"""


def sched_of(stat: Path) -> str:
    """``policy:priority`` from a stat line, fields counted after the comm's closing parenthesis."""
    rest = stat.read_text().rsplit(")", 1)[1].split()
    return f"{POLICY_NAMES.get(int(rest[38]), rest[38])}:{rest[37]}"


def thread_scheds(pid: int) -> dict[str, str]:
    """Thread name (the main thread as ``main``) -> policy:priority, plus ``kvm-pit/<pid>`` when it exists."""
    out: dict[str, str] = {}
    for task in sorted(Path(f"/proc/{pid}/task").iterdir()):
        with contextlib.suppress(OSError):
            name = "main" if task.name == str(pid) else (task / "comm").read_text().strip()
            if name == "main" or name.startswith(("CPU ", "IO iothread")):
                out[name] = sched_of(task / "stat")
    for proc in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if proc.name.isdigit() and (proc / "comm").read_text().strip() == f"kvm-pit/{pid}":
                out[f"kvm-pit/{pid}"] = sched_of(proc / "stat")
                out["pit tid"] = proc.name
    return out


@pytest.fixture
def rt_allowed() -> Iterator[None]:
    """SCHED_FIFO must be possible in the guest's cgroups for the start to succeed."""
    caps = probe_host_caps(Path("/"))
    if not (caps.cgroup_version == 1 and caps.rt_runtime_us == 0):
        yield
        return
    try:
        old = SYSCTL.read_text().strip()
        SYSCTL.write_text("-1\n")
    except OSError as err:
        pytest.skip(f"cgroup v1 gives guests no RT runtime here and {SYSCTL} can't be set ({err})")
    record(
        f"cgroup v1 without RT runtime for guests ({caps.rt_runtime_path} = 0): {SYSCTL} -1 during the test"
    )
    try:
        yield
    finally:
        SYSCTL.write_text(old + "\n")


def test_realtime_thread_policies_from_proc_and_verify(
    rt_allowed: None, libvirt_session: Libvirt, make_guest: Callable[..., str]
) -> None:
    online = read_sysfs(Path("/")).online
    xml = GUEST.format(type=libvirt_session.domain_type, first=online.first(), last=online.last())
    name = make_guest(vcpus=2, xml=xml)
    dom = libvirt_session.conn.lookupByName(name)
    dom.createWithFlags(libvirt_session.lv.VIR_DOMAIN_START_PAUSED)
    pid = qemu_pid(name)
    seen = thread_scheds(pid)
    record(f"{name} ({libvirt_session.domain_type}, paused) from /proc/<tid>/stat: "
           + ", ".join(f"{k} {v}" for k, v in seen.items() if k != "pit tid"))  # fmt: skip
    assert seen["CPU 0/KVM" if "CPU 0/KVM" in seen else "CPU 0/TCG"] == "other:0"
    assert seen["CPU 1/KVM" if "CPU 1/KVM" in seen else "CPU 1/TCG"] == "fifo:1"
    assert seen["main"] == "fifo:1"  # <emulatorsched>
    assert seen["IO iothread1"] == "fifo:1"  # <iothreadsched>
    pit = f"kvm-pit/{pid}"
    ver = vmtune("verify", "--connect", URI, "--domain", name, "--json")
    [report] = json.loads(ver.stdout)
    sched = {r["what"]: r["observed"] for r in report["rows"] if r["observed"].startswith("sched ")}
    assert sched["emulator"] == sched["iothread 1"] == "sched fifo:1"  # verify read what /proc says
    if pit not in seen:
        assert libvirt_session.domain_type == "qemu", "KVM made no PIT thread for a pc machine"
        assert ver.returncode == 0, ver.stdout
        record(f"{name}: no {pit} thread (TCG); verify ok")
        return
    if seen[pit] == "fifo:2":  # a vmtune hook installed in this libvirtd raised it at started begin
        assert ver.returncode == 0, ver.stdout
        record(f"{name}: {pit} already fifo:2 (the hook); verify ok")
        return
    assert ver.returncode == 5, ver.stdout + ver.stderr
    # the hook also pins the PIT thread to vCPU 0's CPU; where the kernel left it elsewhere, that drifts too
    vcpu0 = str(online.first())
    status = Path(f"/proc/{seen['pit tid']}/status").read_text()
    allowed = next(line.split()[1] for line in status.splitlines() if line.startswith("Cpus_allowed_list:"))
    drifted = ["pit"] + (["pit affinity"] if allowed != vcpu0 else [])
    assert [d["what"] for d in report["drifts"]] == drifted, report["drifts"]
    policy = seen[pit].split(":")[0]
    assert sched["pit"] == f"sched {seen[pit] if policy in ('fifo', 'rr') else policy}"
    record(f"{name}: verify exit 5, drift: {report['drifts'][0]['message']}")
    # what the hook does at started begin: FIFO 2, on vCPU 0's CPU
    subprocess.run(["chrt", "-f", "-p", "2", seen["pit tid"]], check=True)
    subprocess.run(["taskset", "-p", "-c", vcpu0, seen["pit tid"]], check=True, capture_output=True)
    after = thread_scheds(pid)[pit]
    ver = vmtune("verify", "--connect", URI, "--domain", name)
    record(f"{name}: after chrt -f -p 2 and taskset -c {vcpu0} on {pit} (was on {allowed}): /proc says "
           f"{after}; verify exit {ver.returncode}")  # fmt: skip
    assert after == "fifo:2"
    assert ver.returncode == 0, ver.stdout + ver.stderr
    # the same, running: a second at most, since RT throttling is off and vCPU 1 is FIFO on its CPU
    dom.resume()
    time.sleep(1)
    running = thread_scheds(pid)
    dom.destroy()
    record(f"{name} running 1 s: " + ", ".join(f"{k} {v}" for k, v in running.items() if k != "pit tid"))
    assert {k: v for k, v in running.items() if k != "pit tid"} == {
        k: (after if k == pit else v) for k, v in seen.items() if k != "pit tid"
    }
