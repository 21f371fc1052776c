"""What ``vmtune verify --textfile`` reports per running guest, as numbers (pure).

A :class:`Report` says what drifted in words; monitoring wants stable series instead: one 0/1 per drift
kind (every kind, also when it did not drift, so an alert sees the series go back to 0), one 0/1 per pinned
vCPU, the guest's resident memory per host node, and the share of it that sits on a node the vCPUs run on.
"Local" is measured against the vCPU threads' *observed* affinity: memory on a node no vCPU can run on is
remote for every guest access, whatever ``<numatune>`` asked for.
"""

from __future__ import annotations

from dataclasses import dataclass

from vmtune.core.topology.model import Host
from vmtune.core.verify.compare import Observed, Report, Status, ThreadKind
from vmtune.cpuset import CpuSet

__all__ = ["DRIFT_KINDS", "DomainSample", "sample"]

DRIFT_KINDS = ("vcpu", "emulator", "iothread", "pit", "memory", "hyperv", "isolation")
"""The first word of every :class:`Drift`'s ``what`` (``vcpu 3``, ``iothread 1``, ``memory``...);
``pit``: KVM's PIT thread of a realtime guest, ``isolation``: a host file ``--isolate-host`` confines."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DomainSample:
    domain: str
    drift: tuple[tuple[str, bool], ...]
    """(kind, drifted) for every kind in :data:`DRIFT_KINDS`."""
    vcpu_ok: tuple[tuple[int, bool], ...]
    """(vCPU, runs where and how it is pinned) for every pinned vCPU, by vCPU id; a pinned vCPU whose
    thread is missing is not ok. Floating vCPUs (nothing pinned) are left out: they cannot be wrong."""
    memory_bytes: tuple[tuple[int, int], ...]
    """(host node, bytes resident there) from ``numa_maps``."""
    local_ratio: float | None
    """Share of ``memory_bytes`` on nodes the vCPU threads may run on; None without memory or vCPUs."""


def _vcpu_index(what: str) -> int | None:
    kind, _, index = what.partition(" ")
    return int(index) if kind == "vcpu" and index.isdigit() else None


def _vcpu_ok(report: Report) -> tuple[tuple[int, bool], ...]:
    ok: dict[int, bool] = {}
    for row in report.rows:
        vcpu = _vcpu_index(row.what)
        if vcpu is not None and row.status in (Status.OK, Status.DRIFT):
            ok[vcpu] = row.status is Status.OK
    for drift in report.drifts:
        vcpu = _vcpu_index(drift.what)
        if vcpu is not None:
            ok[vcpu] = False  # also a vCPU with no thread at all (no row)
    return tuple(sorted(ok.items()))


def _local_ratio(observed: Observed, host: Host) -> float | None:
    total = sum(kib for _, kib in observed.memory_kib)
    vcpus = [t.affinity for t in observed.threads if t.kind is ThreadKind.VCPU]
    if not total or not vcpus:
        return None
    nodes = host.nodes_of(CpuSet().union(*vcpus))
    return sum(kib for node, kib in observed.memory_kib if node in nodes) / total


def sample(report: Report, observed: Observed, host: Host) -> DomainSample:
    """The numbers of one guest's verify run; ``host`` maps the vCPUs' CPUs to their nodes."""
    drifted = {d.what.partition(" ")[0] for d in report.drifts}
    return DomainSample(
        domain=report.guest,
        drift=tuple((kind, kind in drifted) for kind in DRIFT_KINDS),
        vcpu_ok=_vcpu_ok(report),
        memory_bytes=tuple((node, kib * 1024) for node, kib in observed.memory_kib),
        local_ratio=_local_ratio(observed, host),
    )
