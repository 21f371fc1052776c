"""Helpers for the e2e tests (the fixtures are in conftest.py): run the real CLI, read /proc directly."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vmtune.adapters.sysfs import read_sysfs

URI = "qemu:///system"
RUN_DIR = Path("/run/libvirt/qemu")
REQUIRED = os.environ.get("VMTUNE_E2E_REQUIRED") == "1"
MEASURED: list[str] = []
"""What the tests measured on this host; conftest prints it in pytest's summary (CI logs show it)."""


def host_shape() -> tuple[str, bool]:
    """The live host's CPU shape, and whether it is the one tests written for it expect: CPUs 0-1, two
    cores without SMT, one NUMA node (so CPU 0 is the default housekeeping reserve and CPU 1 the one
    dedicated core)."""
    host = read_sysfs(Path("/"))
    shape = f"online CPUs {host.online}, {len(host.cores)} cores, {len(host.nodes)} NUMA node(s)"
    return shape, (str(host.online), len(host.cores), len(host.nodes)) == ("0-1", 2, 1)


def spare_pins() -> dict[str, str]:
    """CPUs for hand-written pinned guests: vCPU 0 on the last online CPU, the emulator on the first."""
    online = read_sysfs(Path("/")).online
    return {"vcpu": str(online.last()), "emulator": str(online.first())}


def record(line: str) -> None:
    """A measured fact (affinities read from /proc, libvirt's refusal, ...) for the run's summary."""
    print(f"\n{line}")
    MEASURED.append(line)


@dataclass
class Libvirt:
    conn: Any
    lv: Any
    domain_type: str


def vmtune(
    *args: str, stdin: bytes | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The real CLI in a subprocess (``python -m vmtune``), as an operator runs it."""
    proc = subprocess.run(
        [sys.executable, "-m", "vmtune", *args],
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    return proc


def qemu_pid(name: str) -> int:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            return int((RUN_DIR / f"{name}.pid").read_text().strip())
        except (OSError, ValueError):
            time.sleep(0.1)
    raise AssertionError(f"no pid file for {name}")


def threads(name: str) -> dict[str, list[tuple[int, str]]]:
    """Thread name -> [(tid, Cpus_allowed_list)], read straight from /proc (not through vmtune)."""
    pid = qemu_pid(name)
    out: dict[str, list[tuple[int, str]]] = {}
    for task in sorted(Path(f"/proc/{pid}/task").iterdir()):
        try:
            comm = (task / "comm").read_text().strip()
            status = (task / "status").read_text()
        except OSError:
            continue
        allowed = next(
            ln.split(":", 1)[1].strip() for ln in status.splitlines() if ln.startswith("Cpus_allowed_list")
        )
        out.setdefault(comm, []).append((int(task.name), allowed))
    return out


def vcpu_affinity(name: str) -> dict[int, str]:
    """vCPU id -> Cpus_allowed_list of its ``CPU n/KVM`` (or ``/TCG``) thread."""
    out = {}
    for comm, entries in threads(name).items():
        if comm.startswith("CPU ") and comm.endswith(("/KVM", "/TCG")):
            out[int(comm[4:].split("/")[0])] = entries[0][1]
    return out


def emulator_affinity(name: str) -> set[str]:
    """Distinct affinities of the emulator threads (all but vCPUs, iothreads and KVM's kernel workers)."""
    found = set()
    for comm, entries in threads(name).items():
        if comm.startswith(("CPU ", "IO iothread", "kvm-")):
            continue
        found |= {allowed for _, allowed in entries}
    return found


def restart_daemons(lv: Libvirt) -> None:
    """Restart libvirtd through the repo's scripts (so it loads a newly installed hook) and reconnect."""
    repo = Path(__file__).resolve().parents[2]
    for script in ("libvirt-down.sh", "libvirt-up.sh"):
        res = subprocess.run(
            [repo / "scripts" / script], capture_output=True, text=True, timeout=120, check=False
        )
        assert res.returncode == 0, f"{script}: {res.stdout}{res.stderr}"
    lv.conn = lv.lv.open(URI)
