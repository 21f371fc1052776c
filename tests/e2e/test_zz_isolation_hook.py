"""``--isolate-host`` through the hook libvirtd itself runs: a realtime guest starts, the host's test groups
(a subtree of this machine's cgroup v1 cpuset hierarchy with a real process in it), the real IRQs and the
unbound-workqueue mask are confined to the CPUs the guest does not hold, the guest's KVM PIT thread runs
SCHED_FIFO 2 on vCPU 0's CPU, `vmtune verify` says so, and after `virsh destroy` every file is back byte for
byte.

libvirtd runs hooks with a scrubbed environment, so the hook script this test installs exports the test
settings itself (``VMTUNE_HOOK_CGROUP_ROOT``/``VMTUNE_HOOK_HOST_GROUPS`` at the test subtree, a private state
dir, this checkout's ``src`` on ``PYTHONPATH``) and then runs the hook as ``vmtune hook install`` writes it.
libvirtd looks for hooks only when it starts, so the module restarts it (``scripts/libvirt-down.sh`` +
``libvirt-up.sh``) around the test, and only a libvirtd those scripts started.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from e2ehelp import REQUIRED, URI, Libvirt, qemu_pid, record, restart_daemons, vcpu_affinity, vmtune

from isolation_roots import CPUSET, cpuset_v1_subtree
from vmtune.cli.live_cmd import hook_script
from vmtune.cpuset import CpuSet

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
HOOK = Path("/etc/libvirt/hooks/qemu.d/vmtune")
PIDS = Path(os.environ.get("VMTUNE_PIDS_FILE", "/run/vmtune-test-daemons.pids"))
WQ = Path("/sys/devices/virtual/workqueue/cpumask")
GROUPS = ("host", "host/svc", "user")
ONLINE = CpuSet.parse(Path("/sys/devices/system/cpu/online").read_text().strip())

RT_GUEST = """<domain type='{type}'>
  <name>NAME</name>
  <metadata>
    <vmtune:tuning xmlns:vmtune='https://vmtune.dev/xmlns/1' profile='realtime'/>
  </metadata>
  <memory unit='MiB'>128</memory>
  <vcpu placement='static'>2</vcpu>
  <cputune>
    <vcpupin vcpu='0' cpuset='{guest}'/><vcpupin vcpu='1' cpuset='{guest}'/><emulatorpin cpuset='{host}'/>
  </cputune>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <features><acpi/></features>
  <devices><memballoon model='none'/></devices>
</domain>
"""


def _skip(reason: str) -> None:
    if REQUIRED:
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def subtree() -> Iterator[Path]:
    if not (CPUSET / "cpuset.cpus").is_file():
        pytest.skip(f"no cgroup v1 cpuset hierarchy at {CPUSET}")
    if len(ONLINE) < 2:
        pytest.skip(f"only CPU {ONLINE} online: a guest holding one leaves no housekeeping CPU")
    with cpuset_v1_subtree("vmtune-e2e", GROUPS) as top:
        yield top


@pytest.fixture(scope="module")
def isolating_hook(
    libvirt_session: Libvirt, subtree: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """The hook, with the test settings exported, installed in a restarted libvirtd; the state dir."""
    if not (PIDS.is_file() and any(line.startswith("libvirtd ") for line in PIDS.read_text().splitlines())):
        _skip(f"libvirtd was not started by scripts/libvirt-up.sh ({PIDS}); not restarting someone else's")
    state = tmp_path_factory.mktemp("state")
    state.chmod(0o700)
    settings = {
        "PYTHONPATH": str(REPO / "src"),
        "VMTUNE_HOOK_CGROUP_ROOT": str(subtree),
        "VMTUNE_HOOK_HOST_GROUPS": "host,user",
        "VMTUNE_HOOK_STATE_DIR": str(state),
    }
    exports = "".join(f"export {k}='{v}'\n" for k, v in settings.items())
    body = hook_script(sys.executable).replace("exec ", exports + "exec ", 1)
    old = HOOK.read_bytes() if HOOK.exists() else None
    HOOK.parent.mkdir(parents=True, exist_ok=True)
    HOOK.write_text(body)
    HOOK.chmod(0o755)
    restart_daemons(libvirt_session)
    try:
        yield state
    finally:
        if old is None:
            HOOK.unlink(missing_ok=True)
        else:
            HOOK.write_bytes(old)
        restart_daemons(libvirt_session)


def _irqs() -> dict[int, bytes]:
    out = {}
    for entry in Path("/proc/irq").iterdir():
        with contextlib.suppress(OSError):
            if entry.name.isdigit():
                out[int(entry.name)] = (entry / "smp_affinity_list").read_bytes()
    return out


def _host_state(subtree: Path) -> dict[str, bytes]:
    state = {g: (subtree / g / "cpuset.cpus").read_bytes() for g in ("host", "host/svc", "user")}
    state |= {f"irq {n}": v for n, v in _irqs().items()}
    state["workqueue"] = WQ.read_bytes() if WQ.is_file() else b""
    return state


def _allowed(pid: int) -> str:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return next(ln for ln in lines if ln.startswith("Cpus_allowed_list")).split()[1]


def _pit(qemu: int) -> int | None:
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if entry.name.isdigit() and (entry / "comm").read_text().strip() == f"kvm-pit/{qemu}":
                return int(entry.name)
    return None


def test_realtime_guest_isolates_the_host_and_destroy_restores_it(
    isolating_hook: Path, libvirt_session: Libvirt, make_guest: Callable[..., str], subtree: Path
) -> None:
    guest_cpu, host_cpus = ONLINE.last(), ONLINE - CpuSet([ONLINE.last()])
    sleeper = subprocess.Popen(["sleep", "600"])
    try:
        (subtree / "host/svc/tasks").write_text(str(sleeper.pid))
        before, allowed_before = _host_state(subtree), _allowed(sleeper.pid)
        xml = RT_GUEST.format(type=libvirt_session.domain_type, guest=guest_cpu, host=host_cpus.first())
        name = make_guest(vcpus=2, xml=xml)
        dom = libvirt_session.conn.lookupByName(name)
        dom.create()
        during, allowed_during = _host_state(subtree), _allowed(sleeper.pid)
        moved = {k: (before[k], v) for k, v in during.items() if k.startswith("irq ") and before.get(k) != v}
        record(f"{name}: vCPUs {vcpu_affinity(name)}; test groups before {[before[g] for g in GROUPS]} "
               f"during {[during[g] for g in GROUPS]}; sleep {sleeper.pid} Cpus_allowed_list "
               f"{allowed_before} -> {allowed_during}; workqueue {before['workqueue']!r} -> "
               f"{during['workqueue']!r}; IRQs moved {len(moved)}: {moved}")  # fmt: skip
        want = f"{host_cpus}\n".encode()
        assert [during[g] for g in GROUPS] == [want, want, want]
        assert allowed_during == str(host_cpus)
        if WQ.is_file():
            assert CpuSet.parse_mask(during["workqueue"].decode()) == host_cpus

        qemu = qemu_pid(name)
        pit = _pit(qemu)
        env = {**os.environ, "VMTUNE_HOOK_CGROUP_ROOT": str(subtree), "VMTUNE_HOOK_HOST_GROUPS": "host,user",
               "VMTUNE_HOOK_STATE_DIR": str(isolating_hook)}  # fmt: skip
        verify = vmtune("verify", "--connect", URI, "--domain", name, "--json", env=env)
        rows = {r["what"]: r for r in json.loads(verify.stdout or "[]")[0]["rows"]} if verify.stdout else {}
        shown = {k: (r["expected"], r["observed"], r["status"]) for k, r in rows.items()
                 if k.startswith(("host", "work", "irq default", "pit"))}  # fmt: skip
        record(f"{name}: vmtune verify exit {verify.returncode}; isolation rows {shown}")
        assert rows["host group host"]["status"] == "ok" and rows["host group user"]["status"] == "ok"
        if pit is None:
            record(f"{name}: no kvm-pit/{qemu} thread (domain type {libvirt_session.domain_type}: KVM "
                   "made no in-kernel PIT); its policy not checked")  # fmt: skip
        else:
            stat = Path(f"/proc/{pit}/stat").read_text().rsplit(")", 1)[1].split()
            policy, priority = int(stat[38]), int(stat[37])
            chrt = subprocess.run(
                ["chrt", "-p", str(pit)], capture_output=True, text=True, check=False
            ).stdout
            pinned = _allowed(pit)
            record(f"{name}: kvm-pit/{qemu} tid {pit}: /proc stat policy {policy} rt_priority {priority}, "
                   f"Cpus_allowed_list {pinned}; chrt -p: {' | '.join(chrt.strip().splitlines())}"
                   )  # fmt: skip
            assert (policy, priority) == (os.SCHED_FIFO, 2)
            assert pinned == vcpu_affinity(name)[0]
            assert rows["pit"]["status"] == "ok"

        dom.destroy()  # libvirt runs release end
        deadline = time.monotonic() + 10
        while _host_state(subtree) != before and time.monotonic() < deadline:
            time.sleep(0.1)
        after, allowed_after = _host_state(subtree), _allowed(sleeper.pid)
        record(f"{name}: after destroy: test groups {[after[g] for g in GROUPS]}, sleep "
               f"{allowed_after}, workqueue {after['workqueue']!r}, every IRQ as before: "
               f"{all(after.get(k) == v for k, v in before.items())}")  # fmt: skip
        assert after == before
        assert allowed_after == allowed_before
        assert not (isolating_hook / "isolation.json").exists()
    finally:
        sleeper.kill()
        sleeper.wait()
