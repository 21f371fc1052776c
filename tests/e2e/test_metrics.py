"""`vmtune verify --connect qemu:///system --textfile PATH` against a real running guest.

The guest pins vCPU 0 to the last online CPU and the emulator to the first (``spare_pins``); the file is
read back with prometheus_client's own parser and every value is checked against what this host shows
directly: the vCPU thread's affinity and each node's share from ``/proc/<pid>/numa_maps``, the nodes from
sysfs. Then a vCPU thread is switched to SCHED_BATCH behind libvirt's back (its cpuset cgroup would refuse a
new affinity), and the metrics must say that vCPU drifted.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from e2ehelp import URI, Libvirt, qemu_pid, record, spare_pins, vcpu_affinity, vmtune

from vmtune.cpuset import CpuSet

pytestmark = pytest.mark.e2e
parser = pytest.importorskip("prometheus_client.parser", reason="pip install 'vmtune[dev]'")

PINNED = """<domain type='{type}'>
  <name>NAME</name>
  <memory unit='MiB'>128</memory>
  <vcpu placement='static'>1</vcpu>
  <cputune><vcpupin vcpu='0' cpuset='{vcpu}'/><emulatorpin cpuset='{emulator}'/></cputune>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices><memballoon model='none'/></devices>
</domain>
"""
_NODE = re.compile(r"\bN(\d+)=(\d+)\b")
_PAGE = re.compile(r"\bkernelpagesize_kB=(\d+)\b")


def numa_bytes(pid: int) -> dict[str, int]:
    """Resident bytes per node, read straight from numa_maps (not through vmtune)."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/numa_maps").read_text().splitlines():
        page = int(m.group(1)) if (m := _PAGE.search(line)) else 4
        for node, pages in _NODE.findall(line):
            out[node] = out.get(node, 0) + int(pages) * page * 1024
    return out


def node_of_cpus(cpus: CpuSet) -> set[str]:
    nodes = Path("/sys/devices/system/node").glob("node[0-9]*")
    return {
        n.name[4:] for n in nodes if not CpuSet.parse((n / "cpulist").read_text().strip()).isdisjoint(cpus)
    }


def metrics(path: Path) -> dict[str, list[tuple[dict[str, str], float]]]:
    fams = parser.text_string_to_metric_families(path.read_text())
    return {f.name: [(dict(s.labels), s.value) for s in f.samples] for f in fams}


def of(fam: list[tuple[dict[str, str], float]], domain: str, key: str | None = None) -> dict[str, float]:
    return {(lab[key] if key else ""): v for lab, v in fam if lab["domain"] == domain}


def test_verify_textfile_matches_the_live_guest(
    libvirt_session: Libvirt, make_guest: Callable[..., str], tmp_path: Path
) -> None:
    pins = spare_pins()
    name = make_guest(vcpus=1, xml=PINNED.format(type=libvirt_session.domain_type, **pins))
    libvirt_session.conn.lookupByName(name).create()
    pid = qemu_pid(name)
    assert vcpu_affinity(name) == {0: pins["vcpu"]}
    prom = tmp_path / "vmtune.prom"
    before = numa_bytes(pid)
    res = vmtune("verify", "--connect", URI, "--domain", name, "--textfile", str(prom))
    after = numa_bytes(pid)
    assert res.returncode == 0, res.stdout + res.stderr
    got = metrics(prom)
    assert prom.stat().st_mode & 0o777 == 0o644 and [p.name for p in tmp_path.iterdir()] == [prom.name]

    assert of(got["vmtune_vcpu_pinned_ok"], name, "vcpu") == {"0": 1.0}
    assert of(got["vmtune_domain_drift"], name, "what") == dict.fromkeys(
        ("vcpu", "emulator", "iothread", "pit", "memory", "hyperv", "isolation"), 0.0
    )
    memory = of(got["vmtune_domain_memory_bytes"], name, "node")
    assert set(memory) == set(before) | set(after)
    for node, size in memory.items():  # the guest still faults pages in while it boots
        low, high = min(before.get(node, 0), after.get(node, 0)), max(before.get(node, 0), after.get(node, 0))
        assert 0.9 * low <= size <= 1.1 * high, (node, size, before, after)
    local = node_of_cpus(CpuSet.parse(pins["vcpu"]))
    expected = sum(v for n, v in memory.items() if n in local) / sum(memory.values())
    assert of(got["vmtune_domain_memory_local_ratio"], name)[""] == pytest.approx(expected)
    (_, stamp), *_ = got["vmtune_last_run_timestamp_seconds"]
    assert abs(stamp - time.time()) < 120
    record(f"{name}: textfile memory {memory}, local ratio {expected:.3f} (nodes {sorted(local)})")

    # drift behind libvirt's back: the vCPU thread's policy (its affinity is held by the cpuset cgroup)
    tid = next(int(t.name) for t in Path(f"/proc/{pid}/task").iterdir()
               if (t / "comm").read_text().startswith("CPU 0/"))  # fmt: skip
    os.sched_setscheduler(tid, os.SCHED_BATCH, os.sched_param(0))
    res = vmtune("verify", "--connect", URI, "--domain", name, "--textfile", str(prom))
    assert res.returncode == 5, res.stdout + res.stderr
    got = metrics(prom)
    assert of(got["vmtune_vcpu_pinned_ok"], name, "vcpu") == {"0": 0.0}
    assert of(got["vmtune_domain_drift"], name, "what")["vcpu"] == 1.0
