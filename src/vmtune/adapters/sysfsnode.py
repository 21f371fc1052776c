"""NUMA nodes of a sysfs root: CPUs, memory, hugepages and distances per ``sys/devices/system/node/nodeN``.

Quirks (see ../shared/corpora/sysfs/INDEX.md): membership from ``cpulist``, ``cpumap`` or only ``nodeN/cpuM``
links (libvirt-trimmed dumps); sparse node ids with positional ``distance`` rows (a row has one column per
online node in id order, and some dumps disagree about which list that is); node0 missing.
"""

from __future__ import annotations

import re

from vmtune.adapters.procinfo import meminfo_kib
from vmtune.adapters.sysfsio import SysfsFiles
from vmtune.core.topology.build import NodeRecord, distances_from_row
from vmtune.core.topology.model import HugePages
from vmtune.cpuset import CpuSet
from vmtune.errors import InputError

__all__ = ["read_hugepages", "read_nodes"]

_CPU_DIR = re.compile(r"cpu(\d+)$")
_NODE_DIR = re.compile(r"node(\d+)$")
_HUGE_DIR = re.compile(r"hugepages-(\d+)kB$")


def read_nodes(files: SysfsFiles, base: str) -> tuple[list[NodeRecord], list[str]]:
    """NUMA nodes under ``base`` (``sys/devices/system/node``) and warnings; no nodes when it is absent."""
    entries = files.listdir(base)
    ids = sorted(int(m.group(1)) for e in entries if (m := _NODE_DIR.match(e)))
    if not ids:
        return [], []
    warn: list[str] = []
    online = files.cpulist(f"{base}/online")
    possible = files.cpulist(f"{base}/possible")
    # Distance rows have one column per online node in id order; see distances_from_row.
    candidates = [list(s) for s in (online, possible) if s is not None]
    candidates.insert(1 if online is not None else 0, ids)
    nodes: list[NodeRecord] = []
    for nid in ids:
        d = f"{base}/node{nid}"
        ne = set(files.listdir(d))
        cpus = files.set_from(d, ne, "cpulist", "cpumap")
        if cpus is None:
            # libvirt-trimmed dumps (and some old kernels) only have nodeN/cpuM links
            cpus = CpuSet(int(m.group(1)) for e in ne if (m := _CPU_DIR.match(e)))
        mem = meminfo_kib(files.text(f"{d}/meminfo") or "") if "meminfo" in ne else {}
        distances: tuple[tuple[int, int], ...] = ()
        if "distance" in ne:
            path = f"{d}/distance"
            raw = files.text(path) or ""
            try:
                row = [int(x) for x in raw.split()]
            except ValueError:
                raise InputError(f"{path}: expected integers, found {raw[:40]!r}") from None
            pairs = distances_from_row(row, candidates, ids)
            if pairs is None:
                warn.append(f"{path}: {len(row)} columns match no node list; distances ignored")
            else:
                distances = pairs
        nodes.append(
            NodeRecord(
                id=nid,
                cpus=cpus,
                mem_total_kib=mem.get("MemTotal"),
                mem_free_kib=mem.get("MemFree"),
                hugepages=read_hugepages(files, f"{d}/hugepages") if "hugepages" in ne else (),
                distances=distances,
            )
        )
    return nodes, warn


def read_hugepages(files: SysfsFiles, base: str) -> tuple[HugePages, ...]:
    """``hugepages-<size>kB/{nr,free}_hugepages`` under ``base``, by size."""
    out = []
    for entry in files.listdir(base):
        m = _HUGE_DIR.match(entry)
        if not m:
            continue
        total = files.integer(f"{base}/{entry}/nr_hugepages")
        free = files.integer(f"{base}/{entry}/free_hugepages")
        out.append(HugePages(size_kib=int(m.group(1)), total=total or 0, free=free or 0))
    return tuple(sorted(out, key=lambda h: h.size_kib))
