"""Test roots for host isolation: a cgroup v2 layout, /proc/irq, the workqueue mask and cpufreq, as the kernel
lays them out, under a temp dir; and a test subtree of this machine's real cgroup v1 cpuset hierarchy
(``cpuset_v1_subtree``, for test_isolation_v1.py and the e2e hook test)."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

from sysfsgen import NAMED_HOSTS, write_sysfs
from vmtune.adapters.hookenv import HookPaths

__all__ = ["CPUSET", "GROUPS", "cpuset_v1_subtree", "make_root", "snapshot", "status_for"]

GROUPS = ("system.slice", "user.slice", "init.scope")
NS = "https://vmtune.dev/xmlns/1"
CPUSET = Path("/sys/fs/cgroup/cpuset")


@contextlib.contextmanager
def cpuset_v1_subtree(prefix: str, groups: Sequence[str]) -> Iterator[Path]:
    """``CPUSET/<prefix>-XXXXXXXX`` with ``groups`` (parents before children) under it, each on every
    online CPU and the root's memory nodes; removed whatever happens, its tasks moved back to the root
    first (a cgroup with tasks cannot be removed)."""
    top = CPUSET / f"{prefix}-{uuid.uuid4().hex[:8]}"
    cpus = Path("/sys/devices/system/cpu/online").read_text().strip()
    mems = (CPUSET / "cpuset.mems").read_text().strip()
    made: list[Path] = []
    try:
        for path in (top, *(top / g for g in groups)):
            path.mkdir()
            made.append(path)
            (path / "cpuset.cpus").write_text(cpus)
            (path / "cpuset.mems").write_text(mems)
        yield top
    finally:
        for path in reversed(made):
            with contextlib.suppress(OSError):
                for pid in (path / "tasks").read_text().split():
                    with contextlib.suppress(OSError):
                        (CPUSET / "tasks").write_text(pid)
            with contextlib.suppress(OSError):
                path.rmdir()


def make_root(tmp: Path, *, host: str = "dual-ht-adjacent", cpufreq: bool = False) -> HookPaths:
    """A host from ``hosts.toml`` with a v2 cgroup tree, four IRQs, a PCI device with two MSI vectors on
    node 1, and (``cpufreq``) ``scaling_governor`` files."""
    root = tmp / "root"
    write_sysfs(NAMED_HOSTS[host], root)
    online = (root / "sys/devices/system/cpu/online").read_text().strip()
    cg = tmp / "cgroup"
    cg.mkdir()
    (cg / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    for group in (*GROUPS, "machine.slice"):
        (cg / group).mkdir()
        (cg / group / "cgroup.controllers").write_text("cpuset cpu\n")
        (cg / group / "cpuset.cpus").write_text("\n")  # v2: empty = inherit the parent's
    (cg / "user.slice" / "cpuset.cpus").write_text(f"{online}\n")
    proc = tmp / "proc"
    for irq in (0, 9, 120, 121):
        (proc / "irq" / str(irq)).mkdir(parents=True)
        (proc / "irq" / str(irq) / "smp_affinity_list").write_text(f"{online}\n")
    (proc / "irq/default_smp_affinity").write_text("ffffffff\n")
    dev = root / "sys/bus/pci/devices/0000:41:00.0"
    (dev / "msi_irqs").mkdir(parents=True)
    for irq in (120, 121):
        (dev / "msi_irqs" / str(irq)).write_text("msix\n")
    (dev / "numa_node").write_text("1\n")
    wq = root / "sys/devices/virtual/workqueue"
    wq.mkdir(parents=True)
    (wq / "cpumask").write_text("ffffffff\n")
    if cpufreq:
        for cpu_dir in sorted((root / "sys/devices/system/cpu").glob("cpu[0-9]*")):
            (cpu_dir / "cpufreq").mkdir(exist_ok=True)
            (cpu_dir / "cpufreq/scaling_governor").write_text("schedutil\n")
            if cpu_dir.name != "cpu0":
                (cpu_dir / "online").write_text("1\n")
    status = tmp / "status"
    status.mkdir()
    state = tmp / "state"
    state.mkdir(mode=0o700)
    os.chmod(state, 0o700)
    return HookPaths(status_dir=status, state_dir=state, sysfs_root=root, domcaps=None, cgroup_root=cg,
                     host_groups=GROUPS, procfs_root=proc, systemd_dir=tmp / "no-systemd")  # fmt: skip


def snapshot(paths: HookPaths) -> dict[str, bytes]:
    """Every file under the cgroup, proc and sysfs test roots, byte for byte."""
    out: dict[str, bytes] = {}
    for base in (paths.cgroup_root, paths.procfs_root, paths.sysfs_root):
        for path in sorted(base.rglob("*")):
            if path.is_file() and not path.is_symlink():
                out[str(path)] = path.read_bytes()
    return out


def status_for(paths: HookPaths, name: str, xml: bytes, pid: int = 4242) -> None:
    """libvirt's status file (and pid file) for a running guest."""
    (paths.status_dir / f"{name}.xml").write_bytes(
        b"<domstatus state='running' reason='booted' pid='%d'>\n<vcpus/>\n" % pid + xml + b"</domstatus>\n"
    )
    (paths.status_dir / f"{name}.pid").write_text(f"{pid}\n")
