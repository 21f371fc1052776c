"""The kernel files host isolation changes: found under the hook's configured roots, checked on the way back.

The hook runs as root and its journal drives root writes, so a path or value read back from the journal is
never trusted: :func:`recognise` accepts only the files this module would itself have chosen (a cgroup's
``cpuset.cpus`` under the cgroup root, ``/proc/irq/N/smp_affinity_list``, ``default_smp_affinity``, the
unbound-workqueue ``cpumask``, a CPU's ``cpufreq/scaling_governor`` or ``online``, a systemd unit's
``AllowedCPUs``), and :func:`check_value` only the syntax that file takes.

Groups: each configured host group (``system.slice``...) is looked for at ``<root>/<group>`` and, for a
cgroup v1 layout with named hierarchies, at ``<root>/cpuset/<group>``; a folder is a cpuset group when it
has a ``cpuset.cpus`` file, and a v1 one when it has no ``cgroup.controllers`` (v2 puts one in every group).
In v1 a child's ``cpuset.cpus`` must stay inside its parent's (``validate_change`` in kernel/cgroup/cpuset.c
answers EBUSY), so the v1 children are part of the change; v2 intersects with the parent by itself.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from vmtune.cpuset import CpuSet
from vmtune.errors import InputError

if TYPE_CHECKING:
    from vmtune.adapters.hookenv import HookPaths

__all__ = [
    "MACHINE_GROUPS",
    "Group",
    "Kind",
    "check_value",
    "cpu_file",
    "device_irqs",
    "device_node_cpus",
    "host_groups",
    "irq_files",
    "mask_files",
    "mask_text",
    "online_cpus",
    "read_value",
    "recognise",
    "unit_key",
    "v1_children",
    "write_value",
]

MACHINE_GROUPS = frozenset({"machine", "machine.slice"})
"""libvirt's partition (v1 without systemd: ``machine``; systemd: ``machine.slice``). Never confined: a host
cpuset that leaves out a guest's CPUs makes libvirt fail "cannot set CPU affinity" (the trap hand-written
vfio-isolate hooks fall into)."""
UNIT_PREFIX = "systemd:"
_UNIT_RE = re.compile(r"[A-Za-z0-9:_.\\@-]{1,200}\.(slice|scope|service)")
_CPULIST_RE = re.compile(r"[0-9,-]{0,4096}\n?")
_MASK_RE = re.compile(r"[0-9a-fA-F,]{0,4096}\n?")
_GOVERNOR_RE = re.compile(r"[a-z0-9_-]{1,15}\n?")
_ONLINE_RE = re.compile(r"[01]\n?")


class Kind(StrEnum):
    CGROUP = "cgroup"
    UNIT = "unit"
    IRQ = "irq"
    MASK = "mask"
    GOVERNOR = "governor"
    ONLINE = "online"


@dataclass(frozen=True, slots=True, kw_only=True)
class Group:
    """One configured host group as found on this host."""

    name: str
    folder: Path
    v1: bool
    unit: str | None = None
    """The systemd unit to set ``AllowedCPUs`` on (systemd runs and the group is a v2 unit), else None."""

    @property
    def key(self) -> str:
        return unit_key(self.unit) if self.unit else str(self.folder / "cpuset.cpus")


def unit_key(unit: str) -> str:
    return UNIT_PREFIX + unit


def _under(path: Path, root: Path) -> bool:
    """``path`` is strictly inside ``root``, also after following symlinks (a link out of the root is
    refused)."""
    if ".." in path.parts or not path.is_absolute():
        return False
    try:
        return path.is_relative_to(root) and Path(os.path.realpath(path)).is_relative_to(
            os.path.realpath(root)
        )
    except OSError:
        return False


def _cpu_dir(paths: HookPaths) -> Path:
    return paths.sysfs_root / "sys/devices/system/cpu"


def cpu_file(paths: HookPaths, cpu: int, kind: Kind) -> Path:
    name = "cpufreq/scaling_governor" if kind is Kind.GOVERNOR else "online"
    return _cpu_dir(paths) / f"cpu{cpu}" / name


def mask_files(paths: HookPaths) -> tuple[Path, ...]:
    """The hex masks that follow the housekeeping CPUs: unbound workqueues, and the IRQs yet to come."""
    return (
        paths.sysfs_root / "sys/devices/virtual/workqueue/cpumask",
        paths.procfs_root / "irq/default_smp_affinity",
    )


def recognise(key: str, paths: HookPaths) -> Kind:
    """The kind of a journal key, or InputError when it is not a file the hook would change itself."""
    if key.startswith(UNIT_PREFIX):
        if _UNIT_RE.fullmatch(key[len(UNIT_PREFIX) :]):
            return Kind.UNIT
        raise InputError(f"journal: {key!r} is not a systemd unit the hook sets")
    path = Path(key)
    if path.name == "cpuset.cpus" and _under(path, paths.cgroup_root):
        if not any(part in MACHINE_GROUPS for part in path.relative_to(paths.cgroup_root).parts):
            return Kind.CGROUP
    elif path in mask_files(paths):
        return Kind.MASK
    elif path.name == "smp_affinity_list" and path.parent.parent == paths.procfs_root / "irq":
        if path.parent.name.isdigit():
            return Kind.IRQ
    elif path.parent.parent == _cpu_dir(paths) or path.parent.parent.parent == _cpu_dir(paths):
        cpu = path.parent.name if path.name == "online" else path.parent.parent.name
        number = cpu.removeprefix("cpu")
        if cpu.startswith("cpu") and number.isdigit() and int(number) > 0:
            if path.name == "online" and path.parent.parent == _cpu_dir(paths):
                return Kind.ONLINE
            if path.name == "scaling_governor" and path.parent.name == "cpufreq":
                return Kind.GOVERNOR
    raise InputError(f"journal: {key!r} is not a file the hook changes under its roots")


def check_value(kind: Kind, value: str, key: str) -> str:
    """``value`` when it has the syntax ``kind``'s file takes, else InputError."""
    pattern = {
        Kind.CGROUP: _CPULIST_RE, Kind.UNIT: _CPULIST_RE, Kind.IRQ: _CPULIST_RE, Kind.MASK: _MASK_RE,
        Kind.GOVERNOR: _GOVERNOR_RE, Kind.ONLINE: _ONLINE_RE,
    }[kind]  # fmt: skip
    if not pattern.fullmatch(value):
        raise InputError(f"journal: value {value[:40]!r} for {key} is not what that file takes")
    if kind in (Kind.CGROUP, Kind.UNIT, Kind.IRQ):
        CpuSet.parse(value.strip(), what=f"journal: {key}")
    return value


def read_value(key: str, kind: Kind) -> str | None:
    """The file's text as the kernel gives it (the bytes a restore writes back); None when it is gone."""
    if kind is Kind.UNIT:
        return _unit_show(key[len(UNIT_PREFIX) :])
    try:
        with open(key, encoding="ascii") as fh:
            return fh.read(8192)
    except (OSError, UnicodeDecodeError):
        return None


def write_value(key: str, kind: Kind, value: str) -> str | None:
    """Write ``value``; None when done, else why not (the caller decides whether that matters).

    One ``write(2)`` of the whole text: the kernel parses each write of a cgroup or sysfs file alone, and an
    empty write is no write at all, so an empty value (a v2 ``cpuset.cpus`` that inherits) is sent as
    ``"\\n"``. Never creates a file and never follows a symlink at the last step.
    """
    if kind is Kind.UNIT:
        return _unit_set(key[len(UNIT_PREFIX) :], value.strip())
    data = (value if value.endswith("\n") else value + "\n").encode("ascii")
    try:
        fd = os.open(key, os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as err:
        return err.strerror or str(err)
    try:
        os.write(fd, data)
    except OSError as err:
        return err.strerror or str(err)
    finally:
        os.close(fd)
    return None


def _systemctl() -> str | None:
    return shutil.which("systemctl")


def _unit_show(unit: str) -> str | None:
    exe = _systemctl()
    if exe is None:
        return None
    res = subprocess.run([exe, "show", "--property=AllowedCPUs", "--value", unit], capture_output=True,
                         text=True, timeout=30, check=False)  # fmt: skip
    return res.stdout.strip() + "\n" if res.returncode == 0 else None


def _unit_set(unit: str, cpus: str) -> str | None:
    exe = _systemctl()
    if exe is None:
        return "systemctl not found"
    res = subprocess.run([exe, "set-property", "--runtime", unit, f"AllowedCPUs={cpus}"], capture_output=True,
                         text=True, timeout=30, check=False)  # fmt: skip
    return None if res.returncode == 0 else (res.stderr.strip().splitlines() or ["failed"])[-1]


def host_groups(paths: HookPaths) -> tuple[tuple[Group, ...], tuple[str, ...]]:
    """The configured host groups found here, and one warning per group left alone."""
    found: list[Group] = []
    warnings: list[str] = []
    systemd = paths.systemd_dir.is_dir()
    for name in paths.host_groups:
        if not name or name.startswith("/") or ".." in Path(name).parts:
            warnings.append(f"host group {name!r}: a path relative to {paths.cgroup_root} expected; skipped")
            continue
        if any(part in MACHINE_GROUPS for part in Path(name).parts):
            warnings.append(f"host group {name!r} is libvirt's partition; never confined")
            continue
        folder = next(
            (
                f
                for f in (paths.cgroup_root / name, paths.cgroup_root / "cpuset" / name)
                if (f / "cpuset.cpus").is_file()
            ),
            None,
        )
        if folder is None:
            continue  # not on this host (no systemd: no system.slice): nothing to confine
        if any((folder / m).exists() for m in MACHINE_GROUPS):
            warnings.append(f"host group {name!r} holds libvirt's partition; never confined")
            continue
        v1 = not (folder / "cgroup.controllers").is_file()
        unit = name if systemd and not v1 and _UNIT_RE.fullmatch(name) else None
        found.append(Group(name=name, folder=folder, v1=v1, unit=unit))
    return tuple(found), tuple(warnings)


def v1_children(folder: Path) -> tuple[tuple[Path, int], ...]:
    """Every cpuset group below a v1 ``folder`` with its depth (1 = a direct child), parents first."""
    out: list[tuple[Path, int]] = []
    stack = [(folder, 0)]
    while stack:
        parent, depth = stack.pop()
        with contextlib.suppress(OSError):
            for child in sorted(parent.iterdir(), reverse=True):
                usable = child.is_dir() and not child.is_symlink() and child.name not in MACHINE_GROUPS
                if usable and (child / "cpuset.cpus").is_file():
                    out.append((child, depth + 1))
                    stack.append((child, depth + 1))
    return tuple(sorted(out, key=lambda item: (item[1], str(item[0]))))


def irq_files(paths: HookPaths) -> tuple[tuple[int, Path], ...]:
    """(IRQ number, its ``smp_affinity_list``) for every IRQ the kernel lists."""
    out: list[tuple[int, Path]] = []
    with contextlib.suppress(OSError):
        for entry in (paths.procfs_root / "irq").iterdir():
            if entry.name.isdigit() and (entry / "smp_affinity_list").is_file():
                out.append((int(entry.name), entry / "smp_affinity_list"))
    return tuple(sorted(out))


_BDF_RE = re.compile(r"[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]")


def device_irqs(paths: HookPaths, bdf: str) -> frozenset[int]:
    """The MSI/MSI-X vectors of a PCI device (``msi_irqs/<N>``), empty when it has none or is unknown."""
    if not _BDF_RE.fullmatch(bdf):
        return frozenset()
    folder = paths.sysfs_root / "sys/bus/pci/devices" / bdf / "msi_irqs"
    try:
        return frozenset(int(e.name) for e in folder.iterdir() if e.name.isdigit())
    except OSError:
        return frozenset()


def device_node_cpus(paths: HookPaths, bdf: str) -> CpuSet | None:
    """The CPUs of the NUMA node a PCI device sits on; None when the kernel does not say (``-1``)."""
    if not _BDF_RE.fullmatch(bdf):
        return None
    try:
        node = int((paths.sysfs_root / "sys/bus/pci/devices" / bdf / "numa_node").read_text().strip())
        if node < 0:
            return None
        text = (paths.sysfs_root / f"sys/devices/system/node/node{node}/cpulist").read_text()
        return CpuSet.parse(text.strip())
    except (OSError, ValueError, InputError):
        return None


def online_cpus(paths: HookPaths) -> CpuSet:
    try:
        return CpuSet.parse((_cpu_dir(paths) / "online").read_text().strip(), what="online CPUs")
    except OSError as err:
        raise InputError(f"{_cpu_dir(paths) / 'online'}: cannot read: {err.strerror or err}") from None


def mask_text(cpus: CpuSet, like: str) -> str:
    """``cpus`` as a hex mask shaped like ``like`` (the kernel's own width and comma grouping)."""
    clean = like.strip()
    digits = len(clean.replace(",", "")) or 1
    text = f"{cpus.bits:0{digits}x}"
    if "," in clean:
        text = text.rjust(-(-len(text) // 8) * 8, "0")
        text = ",".join(text[i : i + 8] for i in range(0, len(text), 8))
    return text + "\n"
