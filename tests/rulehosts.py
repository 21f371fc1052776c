"""Tiny, pure Host and GuestSpec builders for the audit rule tests (no sysfs, no XML; hosts via ``hosts``).

``make_host()`` is the audit tests' named machine "2n4c2t": 2 NUMA nodes x 4 cores x 2 threads, one
socket per node, Intel-style interleaved sibling numbering (core k's threads are k and k+8), a private
L2 per core and one L3 per node. Options vary it (shared L2 clusters, several L3 groups per node,
offline CPUs, isolcpus, hugepages). 64 GiB per node, all of it free but the hugepages.
"""

from __future__ import annotations

from collections.abc import Sequence

from hosts import host_of
from sysfsgen import HostSpec, NodeMem, parse_cpulist
from vmtune.core.audit.engine import Finding, run_rules
from vmtune.core.guest import GuestSpec, VcpuPin
from vmtune.core.plan import Level
from vmtune.core.topology.caps import HostCaps
from vmtune.core.topology.model import Host
from vmtune.cpuset import CpuSet

__all__ = ["check_fires_on_bad_not_on_fixed", "findings", "guest", "make_host", "pins"]

NODE_KIB = 64 * 1024 * 1024


def make_host(
    *,
    nodes: int = 2,
    cores_per_node: int = 4,
    threads: int = 2,
    l2_cores: int = 1,
    l3_per_node: int = 1,
    offline: str = "",
    isolated: str = "",
    hugepages_free: tuple[int, ...] | None = None,
    vendor: str = "Intel",
) -> Host:
    """``hugepages_free[i]``: free (and reserved) 2M pages on node i; None: a kernel without hugetlbfs."""
    pools = [{2048: (free, free)} for free in hugepages_free] if hugepages_free else [{}] * nodes
    spec = HostSpec(
        name=f"{nodes}n{cores_per_node}c{threads}t",
        sockets=nodes,
        cores_per_node=cores_per_node,
        threads_per_core=threads,
        sibling_numbering="interleaved",
        l2_cores=l2_cores,
        l3_cores=cores_per_node // l3_per_node,
        mem_per_node_kib=NODE_KIB,
        node_mem={
            n: NodeMem(NODE_KIB, NODE_KIB - 2048 * huge.get(2048, (0, 0))[0], huge)
            for n, huge in enumerate(pools)
        },
        hugetlb=hugepages_free is not None,
        offline=parse_cpulist(offline),
        isolated=parse_cpulist(isolated),
        vendor=vendor,
    )
    return host_of(spec)


def pins(*specs: str) -> tuple[VcpuPin, ...]:
    """``pins("0", "8", "1-2")``: vCPU i pinned to specs[i]."""
    return tuple(VcpuPin(vcpu=i, cpus=CpuSet.parse(s)) for i, s in enumerate(specs))


def guest(name: str = "g", **kw: object) -> GuestSpec:
    """A GuestSpec with ``source`` = ``<name>.xml`` and vcpus defaulting to the number of pins."""
    if "vcpupins" in kw and "vcpus" not in kw:
        kw["vcpus"] = len(kw["vcpupins"])  # type: ignore[arg-type]
    return GuestSpec(name=name, source=f"{name}.xml", **kw)  # type: ignore[arg-type]


def findings(
    code: str,
    targets: Sequence[GuestSpec],
    *,
    host: Host | None = None,
    tenants: Sequence[GuestSpec] = (),
    caps: HostCaps | None = None,
    reserved: str = "",
) -> tuple[Finding, ...]:
    """Run only rule ``code`` (default host: ``make_host()``)."""
    return run_rules(
        host or make_host(),
        targets,
        tenants=tenants,
        caps=caps,
        reserved=CpuSet.parse(reserved),
        select=frozenset({code}),
    )


def check_fires_on_bad_not_on_fixed(
    code: str,
    bad: GuestSpec,
    fixed: GuestSpec,
    *,
    severity: Level | None,
    host: Host | None = None,
    caps: HostCaps | None = None,
) -> None:
    """Rule ``code`` fires on ``bad`` (complete findings, all of ``severity`` if given), not on ``fixed``."""
    found = findings(code, (bad,), host=host, caps=caps)
    assert found, f"{code} did not fire"
    assert all(f.code == code and f.message and f.fix and f.location for f in found)
    if severity is not None:
        assert {f.severity for f in found} == {severity}
    assert findings(code, (fixed,), host=host, caps=caps) == ()
