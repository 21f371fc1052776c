"""Host probes: the kernel state domcapabilities does not show, read from a root path (tests use fake roots).

* APICv / AVIC: ``/sys/module/kvm_intel/parameters/enable_apicv``, ``/sys/module/kvm_amd/parameters/avic``
  (``Y``/``N``, or ``1``/``0`` on old kernels).
* cgroup version: cgroup v2 mounts one hierarchy whose root has ``cgroup.controllers``; anything else
  (v1, or systemd's hybrid mode, where the cpu controller is still v1) counts as v1.
* RT runtime of the machine slice under cgroup v1: with CONFIG_RT_GROUP_SCHED a new cgroup starts with
  ``cpu.rt_runtime_us = 0``, and SCHED_FIFO for a task in it fails (EPERM). systemd names the slice
  ``machine.slice``; libvirt without systemd uses ``machine``. When the kernel has RT group scheduling (the
  root has ``cpu.rt_runtime_us``) but the slice does not exist yet, it will be created with 0. With
  ``/proc/sys/kernel/sched_rt_runtime_us`` at -1 the kernel enforces no RT budget at all (the EPERM check
  in ``__sched_setscheduler`` needs bandwidth enabled), so no group's 0 matters.
* NUMA node of each PCI device (``/sys/bus/pci/devices/<addr>/numa_node``; -1 = no affinity, skipped).
* Nested virtualisation: the ``hypervisor`` flag in ``/proc/cpuinfo`` (CPUID.1:ECX bit 31, set by every
  hypervisor for its guests). Only x86 prints a ``flags`` line; elsewhere the answer is None.
* Cache allocation: ``/sys/fs/resctrl`` when mounted (``adapters.resctrl``): what ``--cache-share`` needs.
* Whether KVM takes IA32_ARCH_CAPABILITIES (MSR 0x10a) from QEMU for a ``-cpu host`` vCPU. Some nested KVM
  hosts advertise the MSR and then refuse QEMU's write, and the guest dies at start with ``failed to set MSR
  0x10a``; others (and bare metal) take it. Nothing static tells the two apart, so the answer is measured:
  ``EMULATOR -accel kvm -cpu host -S`` is started and told to quit over QMP (QEMU writes the vCPU's MSRs at
  machine reset, before it serves QMP). The answer is cached in ``var/cache/vmtune/cpu-probe.json`` under the
  root, keyed by the kernel release and the emulator's path and mtime (a new kernel or QEMU asks again), and
  every reader (``plan``, ``check``, the hook) only reads the cache. The probe runs only on a nested host and
  only when a caller names the emulator libvirt uses (``apply --connect`` on a local URI,
  ``hook install --connect``).

Every probe that can't read its file answers None ("unknown"); nothing here raises for a missing file.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import fields, replace
from pathlib import Path

from vmtune.adapters.files import atomic_write
from vmtune.adapters.resctrl import read_resctrl
from vmtune.core.topology.caps import HostCaps
from vmtune.errors import VmtuneError

__all__ = ["CPU_PROBE", "merge_caps", "probe_host_caps", "record_msr_probe", "run_msr_probe"]

CPU_PROBE = Path("var/cache/vmtune/cpu-probe.json")
"""Where the MSR 0x10a probe's answer is cached, relative to the probed root."""

_MSR_REFUSED = b"failed to set MSR 0x10a"
_QMP_QUIT = b'{"execute": "qmp_capabilities"}\n{"execute": "quit"}\n'
_PROBE_KEYS = ("kernel", "emulator", "emulator_mtime_ns")
_CPU_DIRS = ("cpu,cpuacct", "cpu", "cpuacct,cpu")
_SLICES = ("machine.slice", "machine")


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _flag(path: Path) -> bool | None:
    value = _read(path)
    if value is None:
        return None
    if value in ("Y", "y", "1"):
        return True
    if value in ("N", "n", "0"):
        return False
    return None


def _int(path: Path) -> int | None:
    value = _read(path)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _apicv(root: Path) -> bool | None:
    params = root / "sys" / "module"
    intel = _flag(params / "kvm_intel" / "parameters" / "enable_apicv")
    if intel is not None:
        return intel
    return _flag(params / "kvm_amd" / "parameters" / "avic")


def _cgroup(root: Path) -> tuple[int | None, int | None, str | None]:
    """(cgroup version, machine slice rt_runtime_us, path shown to the user) under ``root``."""
    base = root / "sys" / "fs" / "cgroup"
    if (base / "cgroup.controllers").is_file():
        return 2, None, None
    if _int(root / "proc" / "sys" / "kernel" / "sched_rt_runtime_us") == -1:
        return (1, None, None) if base.is_dir() else (None, None, None)
    if not base.is_dir():
        return None, None, None
    for cpu_dir in _CPU_DIRS:
        ctl = base / cpu_dir
        if not ctl.is_dir():
            continue
        for slice_name in _SLICES:
            value = _int(ctl / slice_name / "cpu.rt_runtime_us")
            if value is not None:
                return 1, value, f"/sys/fs/cgroup/{cpu_dir}/{slice_name}/cpu.rt_runtime_us"
        if _int(ctl / "cpu.rt_runtime_us") is not None:
            # RT group scheduling is compiled in, the slice does not exist yet: systemd creates it at
            # the first guest start with no RT budget.
            return 1, 0, f"/sys/fs/cgroup/{cpu_dir}/machine.slice/cpu.rt_runtime_us"
        return 1, None, None
    return 1, None, None


def _pci_numa(root: Path) -> tuple[tuple[str, int], ...]:
    devices = root / "sys" / "bus" / "pci" / "devices"
    try:
        entries = sorted(devices.iterdir())
    except OSError:
        return ()
    out: list[tuple[str, int]] = []
    for dev in entries:
        node = _int(dev / "numa_node")
        if node is not None and node >= 0:
            out.append((dev.name, node))
    return tuple(out)


def _nested(root: Path) -> bool | None:
    """True when the first CPU's ``flags`` line has ``hypervisor``; None when there is no flags line."""
    try:
        with (root / "proc" / "cpuinfo").open(encoding="utf-8", errors="replace") as lines:
            # every CPU repeats the same flags; the first line is enough (the file is MBs on big hosts)
            for line in lines:
                key, sep, value = line.partition(":")
                if sep and key.strip() == "flags":
                    return "hypervisor" in value.split()
    except OSError:
        return None
    return None


def _probe_key(root: Path, emulator: str) -> dict[str, object] | None:
    """What the MSR probe's answer depends on: the running kernel and the QEMU binary."""
    kernel = _read(root / "proc" / "sys" / "kernel" / "osrelease")
    try:
        mtime = (root / emulator.lstrip("/")).stat().st_mtime_ns
    except OSError:
        return None
    if kernel is None:
        return None
    return {"kernel": kernel, "emulator": emulator, "emulator_mtime_ns": mtime}


def _cached_msr(root: Path) -> bool | None:
    """The cached probe answer under ``root``; None when missing or made for another kernel or QEMU."""
    try:
        data = json.loads((root / CPU_PROBE).read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("emulator"), str):
        return None
    answer = data.get("arch_capabilities_msr")
    if not isinstance(answer, bool):
        return None
    if _probe_key(root, data["emulator"]) != {key: data.get(key) for key in _PROBE_KEYS}:
        return None
    return answer


def run_msr_probe(emulator: str, *, timeout: float = 30.0) -> bool | None:
    """Start ``emulator -cpu host`` paused and quit: False when KVM refused MSR 0x10a, None if unclear."""
    argv = [emulator, "-accel", "kvm", "-cpu", "host", "-m", "16", "-nodefaults", "-no-user-config"]
    argv += ["-display", "none", "-S", "-qmp", "stdio"]
    try:
        done = subprocess.run(argv, input=_QMP_QUIT, capture_output=True, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    if _MSR_REFUSED in done.stderr:
        return False
    return True if done.returncode == 0 else None


def record_msr_probe(emulator: str, root: Path = Path("/")) -> bool | None:
    """The cached answer for ``emulator``, probing and caching it when missing or stale (live root only).

    An answer of None (no KVM, QEMU would not start) is not cached, and a cache that can't be written
    still returns the answer: the next caller just asks QEMU again.
    """
    cached = _cached_msr(root)
    key = _probe_key(root, emulator)
    if cached is not None or key is None:
        return cached
    answer = run_msr_probe(str(root / emulator.lstrip("/")))
    if answer is not None:
        target = root / CPU_PROBE
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            body = json.dumps({**key, "arch_capabilities_msr": answer}, indent=1) + "\n"
            atomic_write(target, body.encode(), mode=0o644)
        except (OSError, VmtuneError):
            pass
    return answer


def probe_host_caps(root: Path = Path("/"), *, emulator: str | None = None) -> HostCaps:
    """What the running kernel under ``root`` allows (APICv/AVIC, cgroups, RT budget, PCI NUMA, nested, MSR,
    resctrl).

    ``emulator`` (the QEMU libvirt runs, known to ``apply --connect`` on a local URI) lets a nested host
    without a cached MSR answer be probed once; without it the cache is only read.
    """
    version, rt_runtime, rt_path = _cgroup(root)
    nested = _nested(root)
    msr = _cached_msr(root)
    if msr is None and nested and emulator is not None:
        msr = record_msr_probe(emulator, root)
    return HostCaps(
        source=f"probes of {root}",
        apicv=_apicv(root),
        cgroup_version=version,
        rt_runtime_us=rt_runtime,
        rt_runtime_path=rt_path,
        pci_numa=_pci_numa(root),
        nested=nested,
        arch_capabilities_msr=msr,
        resctrl=read_resctrl(root),
    )


def merge_caps(*parts: HostCaps | None) -> HostCaps | None:
    """Combine domcapabilities and probes: for each field the first part that knows it wins."""
    present = [p for p in parts if p is not None]
    if not present:
        return None
    merged = present[0]
    for part in present[1:]:
        changes: dict[str, object] = {}
        for f in fields(HostCaps):
            if f.name == "source":
                continue
            mine, theirs = getattr(merged, f.name), getattr(part, f.name)
            if mine is None or (f.name == "pci_numa" and not mine):
                changes[f.name] = theirs
        sources = [s for s in (merged.source, part.source) if s]
        changes["source"] = " + ".join(sources)
        merged = replace(merged, **changes)  # type: ignore[arg-type]
    return merged
