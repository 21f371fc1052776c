"""``--isolate-host`` against this machine's real kernel: a test subtree of the cgroup v1 cpuset hierarchy
with a real process in it, one real IRQ and the real unbound-workqueue mask (bind-mounted into a test root so
the hook sees nothing else), read back from the kernel's own files.

Skipped, saying why, where the kernel does not offer them (no cgroup v1 cpuset hierarchy, not root, one CPU).
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from isolation_roots import CPUSET, NS, cpuset_v1_subtree
from sysfsgen import capture
from vmtune.adapters.hookenv import HookPaths
from vmtune.cpuset import CpuSet
from vmtune.hook import run_hook


def _online() -> CpuSet:
    return CpuSet.parse(Path("/sys/devices/system/cpu/online").read_text().strip())


def _usable() -> str | None:
    if os.geteuid() != 0:
        return "creating cpuset groups needs root"
    if not (CPUSET / "cpuset.cpus").is_file() or (CPUSET / "cgroup.controllers").exists():
        return f"no cgroup v1 cpuset hierarchy at {CPUSET}"
    if len(_online()) < 2:
        return f"only CPU {_online()} online: a guest holding one leaves no housekeeping CPU"
    return None


pytestmark = pytest.mark.skipif(_usable() is not None, reason=_usable() or "")


@pytest.fixture
def subtree() -> Iterator[Path]:
    """``vmtune-test-XXXX/{host/svc, user, machine}`` in the real hierarchy, removed whatever happens."""
    with cpuset_v1_subtree("vmtune-test", ("host", "host/svc", "user", "machine")) as top:
        yield top


@pytest.fixture
def sleeper(subtree: Path) -> Iterator[int]:
    proc = subprocess.Popen(["sleep", "300"])
    try:
        (subtree / "host/svc/tasks").write_text(str(proc.pid))
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def _allowed(pid: int) -> str:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    return next(ln for ln in status if ln.startswith("Cpus_allowed_list")).split()[1]


def _paths(tmp: Path, subtree: Path, *, sysfs: Path | None = None, procfs: Path | None = None) -> HookPaths:
    empty = tmp / "empty"
    (empty / "irq").mkdir(parents=True, exist_ok=True)
    (tmp / "status").mkdir(exist_ok=True)
    return HookPaths(
        status_dir=tmp / "status", state_dir=tmp / "state", sysfs_root=sysfs or _cpu_root(tmp), domcaps=None,
        cgroup_root=subtree, host_groups=("host", "user"), procfs_root=procfs or empty,
        systemd_dir=tmp / "no-systemd",
    )  # fmt: skip


def _cpu_root(tmp: Path) -> Path:
    """This machine's topology files captured into a test root (no workqueue mask: nothing else to move)."""
    root = tmp / "sysroot"
    if not root.exists():
        capture(Path("/"), root)
    return root


def _guest(cpu: int) -> bytes:
    return (
        f"<domain type='kvm'><name>iso</name><metadata><vmtune:tuning xmlns:vmtune='{NS}' profile='latency' "
        f"isolate-host='yes'/></metadata><memory unit='MiB'>256</memory><vcpu placement='static'>1</vcpu>"
        f"<cputune><vcpupin vcpu='0' cpuset='{cpu}'/></cputune>"
        "<os><type arch='x86_64' machine='pc'>hvm</type></os></domain>"
    ).encode()


def _hook(paths: HookPaths, op: str, subop: str, xml: bytes) -> tuple[int, str]:
    err = io.StringIO()
    return run_hook(["iso", op, subop, "-"], io.BytesIO(xml), io.BytesIO(), err, paths=paths), err.getvalue()


def _cpus(subtree: Path) -> dict[str, bytes]:
    return {g: (subtree / g / "cpuset.cpus").read_bytes() for g in ("host", "host/svc", "user", "machine")}


def test_v1_groups_and_a_real_process_confined_then_restored(
    subtree: Path, sleeper: int, tmp_path: Path
) -> None:
    paths = _paths(tmp_path, subtree)
    online = _online()
    guest_cpu = online.last()
    housekeeping = str(online - CpuSet([guest_cpu]))
    before, allowed_before = _cpus(subtree), _allowed(sleeper)
    xml = _guest(guest_cpu)
    assert _hook(paths, "prepare", "begin", xml) == (0, "")
    during, allowed_during = _cpus(subtree), _allowed(sleeper)
    assert _hook(paths, "release", "end", xml) == (0, "")
    after, allowed_after = _cpus(subtree), _allowed(sleeper)
    print(f"\ncpuset.cpus before {before}\n            during {during}\n            after  {after}")
    print(f"sleep {sleeper} Cpus_allowed_list: {allowed_before} -> {allowed_during} -> {allowed_after}")
    assert during == {"host": f"{housekeeping}\n".encode(), "host/svc": f"{housekeeping}\n".encode(),
                      "user": f"{housekeeping}\n".encode(), "machine": before["machine"]}  # fmt: skip
    assert allowed_during == housekeeping
    assert after == before and allowed_after == allowed_before


def test_v1_kill_between_writes_then_recover(subtree: Path, sleeper: int, tmp_path: Path) -> None:
    """The hook dies after its first cgroup write (the child shrunk, its parent not yet): the next run
    finishes the confinement, release end restores every byte."""
    paths = _paths(tmp_path, subtree)
    online = _online()
    xml = _guest(online.last())
    before = _cpus(subtree)
    calls = [0]

    from vmtune.adapters import isolation

    real = isolation.write_value

    def dies(key: str, kind: isolation.Kind, value: str) -> str | None:
        if calls[0] == 1:
            raise SystemExit(137)
        calls[0] += 1
        return real(key, kind, value)

    saved_default = isolation.reconcile.__kwdefaults__["write"]
    isolation.reconcile.__kwdefaults__["write"] = dies
    try:
        with pytest.raises(SystemExit):
            _hook(paths, "prepare", "begin", xml)
    finally:
        isolation.reconcile.__kwdefaults__["write"] = saved_default
    halfway = _cpus(subtree)
    assert halfway != before
    from vmtune.hook import recover

    summary = recover(paths)
    recovered = _cpus(subtree)
    assert "isolating guests: iso" in summary
    assert recovered["host"] == f"{online - CpuSet([online.last()])}\n".encode()
    assert _hook(paths, "release", "end", xml) == (0, "")
    print(f"\nkilled after 1 write: {halfway}\n{summary}: {recovered}\nafter release end: {_cpus(subtree)}")
    assert _cpus(subtree) == before


def _movable_irq() -> int | None:
    """An IRQ whose affinity the kernel lets us set (a write of its own value back succeeds)."""
    for entry in sorted(Path("/proc/irq").iterdir(), key=lambda p: (not p.name.isdigit(), p.name)):
        path = entry / "smp_affinity_list"
        if not entry.name.isdigit() or not path.is_file():
            continue
        current = path.read_text()
        if CpuSet.parse(current.strip()) != _online():
            continue
        try:
            path.write_text(current)
        except OSError:
            continue
        return int(entry.name)
    return None


@contextlib.contextmanager
def _bound(real: Path, at: Path) -> Iterator[None]:
    at.mkdir(parents=True, exist_ok=True)
    res = subprocess.run(["mount", "--bind", str(real), str(at)], capture_output=True, text=True, check=False)
    if res.returncode != 0:
        pytest.skip(f"cannot bind-mount {real} into the test root: {res.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", str(at)], check=False)


def test_real_irq_and_workqueue_mask_moved_and_restored(subtree: Path, tmp_path: Path) -> None:
    irq = _movable_irq()
    if irq is None:
        pytest.skip("no IRQ here spans every online CPU and accepts a new affinity")
    wq = Path("/sys/devices/virtual/workqueue")
    if not (wq / "cpumask").is_file():
        pytest.skip(f"{wq}/cpumask missing: kernel without unbound-workqueue sysfs")
    sysroot, procroot = _cpu_root(tmp_path), tmp_path / "proc"
    with (
        _bound(Path(f"/proc/irq/{irq}"), procroot / "irq" / str(irq)),
        _bound(wq, sysroot / "sys/devices/virtual/workqueue"),
    ):
        paths = _paths(tmp_path, subtree, sysfs=sysroot, procfs=procroot)
        online = _online()
        xml = _guest(online.last())
        affinity, mask = Path(f"/proc/irq/{irq}/smp_affinity_list"), wq / "cpumask"
        before = (affinity.read_bytes(), mask.read_bytes())
        assert _hook(paths, "prepare", "begin", xml) == (0, "")
        during = (affinity.read_bytes(), mask.read_bytes())
        effective = Path(f"/proc/irq/{irq}/effective_affinity_list")
        effective_during = effective.read_text().strip() if effective.is_file() else "-"
        assert _hook(paths, "release", "end", xml) == (0, "")
        after = (affinity.read_bytes(), mask.read_bytes())
    print(f"\nIRQ {irq} smp_affinity_list / workqueue cpumask: before {before}, during {during} "
          f"(effective {effective_during}), after {after}")  # fmt: skip
    keep = online - CpuSet([online.last()])
    assert during[0] == f"{keep}\n".encode()
    assert CpuSet.parse_mask(during[1].decode()) == keep
    assert effective_during == "-" or CpuSet.parse(effective_during).issubset(keep)
    assert after == before
