"""Read what a running QEMU process really does from /proc (rooted, so tests use a fake tree).

* ``/proc/<pid>/task/<tid>/comm``: the thread name (``CPU 0/KVM``, ``IO iothread1``, ``qemu-system-x86``);
* ``/proc/<pid>/task/<tid>/status``: ``Cpus_allowed_list`` (the affinity libvirt set with
  sched_setaffinity and the cpuset cgroup);
* ``/proc/<pid>/task/<tid>/stat``: fields 40/41 are rt_priority and policy (proc(5)); the comm in field 2
  may contain spaces and parentheses, so fields are counted from the last ``)``;
* ``/proc/<pid>/numa_maps``: ``N<node>=<pages>`` per mapping with ``kernelpagesize_kB``;
* ``/proc/<pid>/cmdline``: QEMU's real ``-cpu`` argument, whose ``hv-*`` properties say which Hyper-V
  enlightenments the guest actually got;
* ``/proc/<tid>/comm`` of every task: KVM's in-kernel PIT runs in a kernel thread named
  ``kvm-pit/<qemu pid>`` (``kvm_create_pit``), outside QEMU's task list, so it is found by name.

Threads can exit while we read (QEMU starts and stops worker threads): a task that vanished is skipped.
"""

from __future__ import annotations

import re
from pathlib import Path

from vmtune.core.verify.compare import POLICY_NAMES, Observed, ObservedThread, classify_thread
from vmtune.cpuset import CpuSet
from vmtune.errors import InputError

__all__ = [
    "find_pit",
    "hyperv_from_cmdline",
    "pit_tid",
    "read_memory_by_node",
    "read_process",
    "read_threads",
]

_NODE_RE = re.compile(r"\bN(\d+)=(\d+)\b")
_PAGESIZE_RE = re.compile(r"\bkernelpagesize_kB=(\d+)\b")
# QEMU property -> libvirt <hyperv> child name (libvirt's qemu_command.c qemuBuildCpuCommandLine)
_HV_PROPS = {
    "hv-relaxed": "relaxed", "hv-vapic": "vapic", "hv-spinlocks": "spinlocks", "hv-vpindex": "vpindex",
    "hv-runtime": "runtime", "hv-synic": "synic", "hv-stimer": "stimer", "hv-reset": "reset",
    "hv-vendor-id": "vendor_id", "hv-frequencies": "frequencies", "hv-reenlightenment": "reenlightenment",
    "hv-tlbflush": "tlbflush", "hv-ipi": "ipi", "hv-evmcs": "evmcs", "hv-avic": "avic",
    "hv-passthrough": "passthrough", "hv-time": "hypervclock",
}  # fmt: skip


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return None
    except PermissionError:
        raise InputError(
            f"{path}: permission denied (verify reads other processes' /proc; run as root)"
        ) from None


def _sched_of(stat: str) -> tuple[str, int]:
    rest = stat[stat.rfind(")") + 2 :].split()
    # rest[0] is field 3 (state); rt_priority is field 40, policy field 41
    priority, policy = int(rest[37]), int(rest[38])
    return POLICY_NAMES.get(policy, str(policy)), priority


def _observed(tid: int, base: Path, name: str) -> ObservedThread | None:
    status, stat = _read(base / "status"), _read(base / "stat")
    if status is None or stat is None:
        return None  # the thread exited between listdir and read
    allowed = next(
        (ln.split(":", 1)[1] for ln in status.splitlines() if ln.startswith("Cpus_allowed_list:")), ""
    )
    policy, priority = _sched_of(stat)
    kind, index = classify_thread(name)
    return ObservedThread(
        tid=tid,
        name=name,
        kind=kind,
        index=index,
        affinity=CpuSet.parse(allowed, what=f"{base}/status Cpus_allowed_list"),
        policy=policy,
        priority=priority,
    )


def pit_tid(pid: int, *, proc: Path = Path("/proc")) -> int | None:
    """The tid of KVM's ``kvm-pit/<pid>`` kernel thread of QEMU process ``pid`` (found by its name: it is
    a top-level task, not one of QEMU's); None when KVM made none (no in-kernel PIT: TCG, a machine
    without a PIT, ``<timer name='pit' present='no'/>``)."""
    want = f"kvm-pit/{pid}"
    try:
        entries = [p for p in proc.iterdir() if p.name.isdigit()]
    except OSError:
        return None
    for entry in entries:
        comm = _read(entry / "comm")
        if comm is not None and comm.rstrip("\n") == want:
            return int(entry.name)
    return None


def find_pit(pid: int, *, proc: Path = Path("/proc")) -> ObservedThread | None:
    """KVM's PIT thread of QEMU process ``pid`` as observed now (``pit_tid``); None when there is none."""
    tid = pit_tid(pid, proc=proc)
    return None if tid is None else _observed(tid, proc / str(tid), f"kvm-pit/{pid}")


def read_threads(pid: int, *, proc: Path = Path("/proc")) -> tuple[ObservedThread, ...]:
    task_dir = proc / str(pid) / "task"
    try:
        tids = sorted(int(p.name) for p in task_dir.iterdir() if p.name.isdigit())
    except FileNotFoundError:
        raise InputError(f"{task_dir}: no such process (is the guest running on this host?)") from None
    out: list[ObservedThread] = []
    for tid in tids:
        base = task_dir / str(tid)
        comm = _read(base / "comm")
        seen = None if comm is None else _observed(tid, base, comm.rstrip("\n"))
        if seen is not None:
            out.append(seen)
    return tuple(out)


def read_memory_by_node(pid: int, *, proc: Path = Path("/proc")) -> tuple[tuple[int, int], ...]:
    """(node, KiB) resident per NUMA node over all mappings, sorted by node."""
    text = _read(proc / str(pid) / "numa_maps")
    if text is None:
        return ()
    kib: dict[int, int] = {}
    for line in text.splitlines():
        page = _PAGESIZE_RE.search(line)
        size = int(page.group(1)) if page else 4
        for m in _NODE_RE.finditer(line):
            node = int(m.group(1))
            kib[node] = kib.get(node, 0) + int(m.group(2)) * size
    return tuple(sorted(kib.items()))


def hyperv_from_cmdline(argv: list[str]) -> tuple[str, ...]:
    """Enlightenments (libvirt names) switched on in QEMU's ``-cpu model,hv-x=on,...`` argument."""
    found: set[str] = set()
    for i, arg in enumerate(argv[:-1]):
        if arg != "-cpu":
            continue
        for prop in argv[i + 1].split(",")[1:]:
            key, _, value = prop.partition("=")
            name = _HV_PROPS.get(key)
            if name and value not in ("off", "false"):
                found.add(name)
    return tuple(sorted(found))


def read_process(guest: str, pid: int, *, proc: Path = Path("/proc")) -> Observed:
    cmdline = _read(proc / str(pid) / "cmdline")
    return Observed(
        guest=guest,
        pid=pid,
        threads=read_threads(pid, proc=proc),
        memory_kib=read_memory_by_node(pid, proc=proc),
        hyperv=hyperv_from_cmdline(cmdline.split("\x00")) if cmdline else None,
        pit=find_pit(pid, proc=proc),
    )
