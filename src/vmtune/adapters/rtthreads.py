"""The KVM PIT kernel thread of a realtime guest: SCHED_FIFO priority 2, on vCPU 0's CPUs (as KubeVirt does).

KVM emulates the i8254 PIT in a kernel worker named ``kvm-pit/<qemu pid>`` (``kvm_create_pit`` in
arch/x86/kvm/i8254.c); its timer callbacks inject the guest's PIT interrupts, so with realtime vCPUs at FIFO 1
it must outrank them or the guest's tick starves. KubeVirt (``affinePitThread``) raises it to FIFO 2 and
gives it vCPU 0's affinity: vCPU 0 is the guest's non-realtime housekeeping vCPU, so the thread shares a
core that is not spinning at FIFO. The thread dies with QEMU: nothing to undo at stop, but the journal keeps
what was set so ``vmtune verify`` can say whether it still holds.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from vmtune.adapters.hookenv import HookPaths
from vmtune.adapters.procfs import pit_tid
from vmtune.core.tuning.rtthreads import PIT_PRIORITY
from vmtune.cpuset import CpuSet

__all__ = ["qemu_pid_of", "raise_pit"]


def qemu_pid_of(paths: HookPaths, name: str) -> int | None:
    """QEMU's pid from libvirt's ``<name>.pid`` next to the status file (written before QEMU runs)."""
    with contextlib.suppress(OSError, ValueError):
        return int((paths.status_dir / f"{name}.pid").read_text().strip())
    return None


def raise_pit(paths: HookPaths, name: str, vcpu0: CpuSet | None) -> tuple[dict[str, Any] | None, list[str]]:
    """Raise ``name``'s PIT thread; returns (the record to journal, one-line notes). Never raises: a
    refusal (cgroup v1 without an RT budget answers EPERM) must not fail the guest's start."""
    notes: list[str] = []
    pid = qemu_pid_of(paths, name)
    if pid is None:
        return None, [f"{paths.status_dir}/{name}.pid: no QEMU pid; kvm-pit thread left alone"]
    tid = pit_tid(pid, proc=paths.procfs_root)
    if tid is None:
        return None, []  # no in-kernel PIT (a machine type or accelerator without one): nothing to raise
    record: dict[str, Any] = {"tid": tid, "comm": f"kvm-pit/{pid}", "policy": "fifo",
                              "priority": str(PIT_PRIORITY), "cpus": str(vcpu0) if vcpu0 else ""}  # fmt: skip
    try:
        os.sched_setscheduler(tid, os.SCHED_FIFO, os.sched_param(PIT_PRIORITY))
    except OSError as err:
        record |= {"policy": "other", "priority": "0"}
        notes.append(f"kvm-pit/{pid} (tid {tid}): SCHED_FIFO {PIT_PRIORITY} refused ({err.strerror or err}); "
                     "left as it was")  # fmt: skip
    if vcpu0:
        try:
            os.sched_setaffinity(tid, set(vcpu0))
        except OSError as err:
            record["cpus"] = ""
            notes.append(f"kvm-pit/{pid} (tid {tid}): cannot pin to {vcpu0} ({err.strerror or err})")
    return record, notes
