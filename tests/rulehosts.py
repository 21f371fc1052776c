"""Tiny, pure Host and GuestSpec builders for the audit rule tests (no sysfs, no XML).

``make_host()`` is the audit tests' named machine "2n4c2t": 2 NUMA nodes x 4 cores x 2 threads, one
socket per node, Intel-style interleaved sibling numbering (core k's threads are k and k+8), a private
L2 per core and one L3 per node. Options vary it (shared L2 clusters, several L3 groups per node,
offline CPUs, isolcpus, hugepages).
"""

from __future__ import annotations

from collections.abc import Sequence

from vmtune.core.audit.engine import Finding, run_rules
from vmtune.core.guest import GuestSpec, VcpuPin
from vmtune.core.plan import Level
from vmtune.core.topology.caps import HostCaps
from vmtune.core.topology.model import CacheGroup, Core, Cpu, Host, HugePages, Node, Socket
from vmtune.cpuset import CpuSet

__all__ = ["check_fires_on_bad_not_on_fixed", "findings", "guest", "make_host", "pins"]


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
    """``hugepages_free[i]``: free 2M pages on node i (None: the host says nothing about hugepages)."""
    total_cores = nodes * cores_per_node
    off = CpuSet.parse(offline)
    core_cpus = [CpuSet(t * total_cores + k for t in range(threads)) for k in range(total_cores)]
    caches: list[CacheGroup] = []
    l2_of: dict[int, int] = {}
    l3_of: dict[int, int] = {}
    l3_cores = cores_per_node // l3_per_node
    for level, size, index_of in ((2, l2_cores, l2_of), (3, l3_cores, l3_of)):
        for first in range(0, total_cores, size):
            cpus = CpuSet().union(*core_cpus[first : first + size]) - off
            index_of.update({k: len(caches) for k in range(first, first + size)})
            caches.append(CacheGroup(index=len(caches), level=level, cpus=cpus))
    cpus: list[Cpu] = []
    cores: list[Core] = []
    for k, kc in enumerate(core_cpus):
        node = k // cores_per_node
        online = kc - off
        if online:
            cores.append(
                Core(index=len(cores), cpus=online, socket=node, node=node, caches={2: l2_of[k], 3: l3_of[k]})
            )
        for cpu in kc:
            up = cpu not in off
            cpus.append(
                Cpu(
                    id=cpu,
                    online=up,
                    socket=node if up else -1,
                    core=len(cores) - 1 if up else -1,
                    node=node,
                    caches={2: l2_of[k], 3: l3_of[k]} if up else {},
                )
            )
    cpus.sort(key=lambda c: c.id)
    node_cpus = [
        CpuSet().union(*core_cpus[n * cores_per_node : (n + 1) * cores_per_node]) - off for n in range(nodes)
    ]
    return Host(
        name=f"{nodes}n{cores_per_node}c{threads}t",
        cpus=tuple(cpus),
        cores=tuple(cores),
        sockets=tuple(Socket(index=n, package_id=n, cpus=node_cpus[n]) for n in range(nodes)),
        nodes=tuple(
            Node(
                id=n,
                cpus=node_cpus[n],
                mem_total_kib=64 * 1024 * 1024,
                hugepages=()
                if hugepages_free is None
                else (HugePages(size_kib=2048, total=hugepages_free[n], free=hugepages_free[n]),),
                distances=tuple((m, 10 if m == n else 21) for m in range(nodes)),
            )
            for n in range(nodes)
        ),
        caches=tuple(sorted(caches, key=lambda c: (c.level, c.cpus.first()))),
        vendor=vendor,
        isolated=CpuSet.parse(isolated),
    )


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
