"""The raw per-CPU and per-node records both topology readers produce for ``core.topology.build``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from vmtune.core.topology.model import HugePages
from vmtune.cpuset import CpuSet

__all__ = ["CacheRecord", "CpuRecord", "NodeRecord", "distances_from_row"]


@dataclass(frozen=True, slots=True, kw_only=True)
class CacheRecord:
    """One data/unified cache as one CPU sees it (instruction caches are dropped by the readers)."""

    level: int
    cpus: CpuSet
    """``shared_cpu_list``: the CPUs sharing it (may include offline CPUs; intersected later)."""
    size_kib: int | None = None
    cache_id: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CpuRecord:
    id: int
    online: bool = True
    has_topology: bool = True
    """False for an online CPU whose source says nothing about its place (no topology dir)."""
    package_id: int | None = None
    die_id: int | None = None
    cluster_id: int | None = None
    core_id: int | None = None
    book_id: int | None = None
    drawer_id: int | None = None
    siblings: CpuSet | None = None
    """Thread siblings (``core_cpus`` / ``thread_siblings``); None when the source has none."""
    package_cpus: CpuSet | None = None
    """Package mask (``package_cpus`` / ``core_siblings``); None when the source has none."""
    capacity: int | None = None
    caches: tuple[CacheRecord, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeRecord:
    id: int
    cpus: CpuSet
    """CPUs the node lists, as the source says (may include offline CPUs and, on buggy BIOSes, all)."""
    mem_total_kib: int | None = None
    mem_free_kib: int | None = None
    hugepages: tuple[HugePages, ...] = ()
    distances: tuple[tuple[int, int], ...] = ()


def distances_from_row(
    row: Sequence[int], candidates: Sequence[Sequence[int]], known: Iterable[int]
) -> tuple[tuple[int, int], ...] | None:
    """Map a positional sysfs ``distance`` row to (node id, distance) pairs.

    The kernel prints one column per *online* node in id order, so with sparse ids (0,1,4,5 or
    0,8,250-255) column i is the i-th node id, not node i. Dumps are not always consistent about which
    list that is (offline-cpu0-node0: node/online says ``1`` but the row has 2 columns, matching
    node/possible), so the first candidate id list of the right length wins. Returns None when no
    candidate fits; pairs for nodes not in ``known`` are dropped.
    """
    wanted = set(known)
    for ids in candidates:
        if len(ids) == len(row):
            return tuple((nid, dist) for nid, dist in zip(ids, row, strict=True) if nid in wanted)
    return None
