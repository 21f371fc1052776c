"""Big and little cores of a hybrid host, from the best evidence the source has, in this order:

1. ``/sys/devices/cpu_core/cpus`` and ``cpu_atom/cpus``: the kernel registers these two PMUs only on Intel
   hybrid parts, each listing the CPUs of one core type as the CPU itself reports it (CPUID leaf 0x1A).
2. ``cpu_capacity`` classes (Arm big.LITTLE/DynamIQ, Intel hybrid on recent kernels): the kernel scales each
   CPU's capacity by its own maximum frequency, so one core type spreads over several close values (DGX
   GB10: Cortex-X925 at 997-1024, Cortex-A725 at 718-731). The cores split in two at the largest gap
   between distinct values, and only when that gap is at least a tenth of the largest capacity: frequency
   binning within one core type stays well below that, another microarchitecture does not.
3. The layout, for kernels without either (the corpus Raptor Lake dump): a package holding both cores with
   SMT and an L2 of their own and single-thread cores that share an L2 (without L2 data: a cluster) with
   other cores is an Intel P-core/E-core part. Cores with a private L2 are big, the sharing ones little;
   both traits are asked for, so a Bulldozer module (shared L2, SMT-like pairs everywhere) or a core whose
   sibling is offline does not make a host hybrid.

Two kinds only: ``--core-kind`` offers big and little, and a three-tier phone SoC (A510/A710/X3) is split
where its capacities differ most.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import pairwise

from vmtune.core.topology.model import KIND_BIG, KIND_LITTLE, CacheGroup, Core
from vmtune.cpuset import CpuSet

__all__ = ["CAPACITY_GAP", "PMU_EVIDENCE", "core_kinds"]

CAPACITY_GAP = 0.1
"""The smallest gap between two capacity classes, as a share of the largest capacity."""
PMU_EVIDENCE = "/sys/devices/cpu_core and cpu_atom"

Kinds = tuple[tuple[int | None, ...], str | None]


def core_kinds(
    cores: Sequence[Core],
    caches: Sequence[CacheGroup],
    *,
    pmu: tuple[CpuSet, CpuSet] | None = None,
    clusters: Mapping[int, object] | None = None,
) -> Kinds:
    """(each core's kind, the evidence) or (all None, None) when the cores are alike.

    ``pmu``: the CPUs of ``cpu_core`` and of ``cpu_atom``; ``clusters``: CPU -> its cluster key, standing
    in for the L2 where the source has no L2 data (x86 numbers clusters by L2).
    """
    for found in (_from_pmu(cores, pmu), _from_capacity(cores), _from_layout(cores, caches, clusters or {})):
        if found[1] is not None:
            return found
    return tuple(None for _ in cores), None


def _from_pmu(cores: Sequence[Core], pmu: tuple[CpuSet, CpuSet] | None) -> Kinds:
    if pmu is None or not pmu[0] or not pmu[1]:
        return (), None
    big, little = pmu
    kinds: list[int | None] = []
    for core in cores:
        first = core.cpus.first()
        kinds.append(KIND_BIG if first in big else KIND_LITTLE if first in little else None)
    if None in kinds or len(set(kinds)) < 2:
        return (), None  # a core of neither list: the files do not describe this host
    return tuple(kinds), PMU_EVIDENCE


def _from_capacity(cores: Sequence[Core]) -> Kinds:
    values = sorted({c.capacity for c in cores if c.capacity is not None})
    if len(values) < 2 or any(c.capacity is None for c in cores):
        return (), None
    gap, low = max((b - a, a) for a, b in pairwise(values))
    if gap < CAPACITY_GAP * values[-1]:
        return (), None
    smaller = [v for v in values if v <= low]
    bigger = [v for v in values if v > low]
    kinds = tuple(KIND_BIG if (c.capacity or 0) > low else KIND_LITTLE for c in cores)
    return kinds, f"cpu_capacity: little {_span(smaller)}, big {_span(bigger)}"


def _span(values: Sequence[int]) -> str:
    return str(values[0]) if values[0] == values[-1] else f"{values[0]}-{values[-1]}"


def _from_layout(
    cores: Sequence[Core], caches: Sequence[CacheGroup], clusters: Mapping[int, object]
) -> Kinds:
    sharing = _l2_sharing(cores, caches, clusters)
    hybrid_sockets = set()
    for socket in {c.socket for c in cores}:
        mine = [c for c in cores if c.socket == socket]
        smt_private = any(len(c.cpus) > 1 and sharing.get(c.index) == 1 for c in mine)
        single_shared = any(len(c.cpus) == 1 and sharing.get(c.index, 0) > 1 for c in mine)
        if smt_private and single_shared:
            hybrid_sockets.add(socket)
    if not hybrid_sockets:
        return (), None
    kinds = tuple(
        None
        if c.socket not in hybrid_sockets
        else KIND_LITTLE
        if sharing.get(c.index, 1 if len(c.cpus) > 1 else 2) > 1
        else KIND_BIG
        for c in cores
    )
    via = "an L2" if any(g.level == 2 for g in caches) else "a cluster"
    return kinds, f"layout: SMT cores with a private L2 are big, single-thread cores sharing {via} are little"


def _l2_sharing(
    cores: Sequence[Core], caches: Sequence[CacheGroup], clusters: Mapping[int, object]
) -> dict[int, int]:
    """Core index -> how many cores share its L2 (its cluster where no core has L2 data)."""
    if any(2 in c.caches for c in cores):
        per_group: dict[int, int] = {}
        for core in cores:
            if 2 in core.caches:
                per_group[core.caches[2]] = per_group.get(core.caches[2], 0) + 1
        return {c.index: per_group[c.caches[2]] for c in cores if 2 in c.caches}
    per_cluster: dict[object, int] = {}
    for core in cores:
        key = clusters.get(core.cpus.first())
        if key is not None:
            per_cluster[key] = per_cluster.get(key, 0) + 1
    return {c.index: per_cluster[key] for c in cores if (key := clusters.get(c.cpus.first())) is not None}
