"""The tests' one Host factory: a ``vmtune.core.topology.model.Host`` straight from a ``sysfsgen.HostSpec``.

The Host is built from the same ``layout()`` and ``node_memory()`` the sysfs fixtures are written from, so a
test's machine is exactly the one ``write_sysfs`` would show the reader, while the tests that use it stay
independent of the reader. It carries what the sysfs tree says (hugepage pools listed with nothing reserved
included, isolcpus, nohz_full, the command line) plus the spec's arch and vendor; raw kernel ids that no
decision reads (die, cluster and cache ids) are left out.
"""

from __future__ import annotations

from collections.abc import Sequence

from sysfsgen import NAMED_HOSTS, Cpu, HostSpec
from vmtune.core.topology.model import KIND_BIG, KIND_LITTLE, CacheGroup, Core, Host, HugePages, Node, Socket
from vmtune.core.topology.model import Cpu as HostCpu
from vmtune.cpuset import CpuSet

__all__ = ["host_named", "host_of"]


def _cache_groups(spec: HostSpec, online: Sequence[Cpu]) -> tuple[CacheGroup, ...]:
    """L2 then L3 sharing groups of the online CPUs, each level ordered by first CPU, as the reader sorts."""
    if not spec.cache_info:
        return ()
    kinds, caches = spec.core_kinds(), list[CacheGroup]()
    for level, attr in ((2, "l2"), (3, "l3")):
        groups: dict[int, list[int]] = {}
        for c in online:
            key = getattr(c, attr)
            if key >= 0:
                groups.setdefault(key, []).append(c.id)
        for members in sorted(groups.values(), key=min):
            first = next(c for c in online if c.id == members[0])
            size = kinds[first.kind].l2_kib if level == 2 else spec.l3_kib
            caches.append(CacheGroup(index=len(caches), level=level, cpus=CpuSet(members), size_kib=size))
    return tuple(caches)


def _kinds(spec: HostSpec) -> tuple[list[int | None], str | None]:
    """Each spec kind's ``Core.kind`` and the evidence the reader names, as sysfsgen writes the host: an
    x86 host of two kinds gets cpu_core (the first kind) and cpu_atom files, others tell by capacity."""
    kinds = spec.core_kinds()
    if len(kinds) < 2:
        return [None] * len(kinds), None
    if spec.arch == "x86_64":
        return [
            KIND_BIG if i == 0 else KIND_LITTLE for i in range(len(kinds))
        ], "/sys/devices/cpu_core and cpu_atom"
    caps = [k.capacity or 0 for k in kinds]
    big = max(caps)
    return [
        KIND_BIG if c == big else KIND_LITTLE for c in caps
    ], f"cpu_capacity: little {min(caps)}, big {big}"


def _cores(spec: HostSpec, online: Sequence[Cpu], caches: Sequence[CacheGroup]) -> tuple[Core, ...]:
    """Dense core indices in order of each core's first CPU; a core's caches are its first CPU's."""
    kinds, sockets = spec.core_kinds(), sorted({c.socket for c in online})
    members: dict[int, list[Cpu]] = {}
    for c in online:
        members.setdefault(c.core, []).append(c)
    ordered = sorted(members.values(), key=lambda threads: min(c.id for c in threads))
    return tuple(
        Core(
            index=i,
            cpus=CpuSet(c.id for c in threads),
            socket=sockets.index(threads[0].socket),
            node=threads[0].node,
            caches={g.level: g.index for g in caches if min(c.id for c in threads) in g.cpus},
            capacity=kinds[threads[0].kind].capacity,
            kind=_kinds(spec)[0][threads[0].kind],
        )
        for i, threads in enumerate(ordered)
    )


def _nodes(spec: HostSpec, online: Sequence[Cpu]) -> tuple[Node, ...]:
    """Every node with its memory and every pool size the kernel lists, reserved or not."""
    nodes = []
    for node_id in spec.node_ids():
        mem = spec.node_memory(node_id)
        pools = (
            HugePages(size_kib=s, total=mem.huge.get(s, (0, 0))[0], free=mem.huge.get(s, (0, 0))[1])
            for s in spec.hugepage_sizes()
        )
        nodes.append(
            Node(
                id=node_id,
                cpus=CpuSet(c.id for c in online if c.node == node_id),
                mem_total_kib=mem.total,
                mem_free_kib=mem.free,
                hugepages=tuple(pools),
                distances=tuple((other, spec.distance(node_id, other)) for other in spec.node_ids()),
            )
        )
    return tuple(nodes)


def host_of(spec: HostSpec) -> Host:
    """The Host the sysfs reader would build from ``write_sysfs(spec, root)``, without the IO."""
    raw = spec.layout()
    online = [c for c in raw if c.online]
    kinds, caches = spec.core_kinds(), _cache_groups(spec, online)
    cores = _cores(spec, online, caches)
    socket_ids = sorted({c.socket for c in online})
    core_of = {cpu: core.index for core in cores for cpu in core.cpus}
    cpus = tuple(
        HostCpu(
            id=c.id,
            online=True,
            socket=socket_ids.index(c.socket),
            core=core_of[c.id],
            node=c.node,
            package_id=c.socket,
            core_id=c.core_id,
            capacity=kinds[c.kind].capacity,
            caches={g.level: g.index for g in caches if c.id in g.cpus},
        )
        if c.online
        else HostCpu(id=c.id, online=False, socket=-1, node=-1)  # sysfs keeps no topology for it
        for c in raw
    )
    sockets = tuple(
        Socket(index=i, package_id=k, cpus=CpuSet(c.id for c in online if c.socket == k))
        for i, k in enumerate(socket_ids)
    )
    nodes = _nodes(spec, online)
    return Host(
        name=spec.name,
        cpus=cpus,
        cores=cores,
        sockets=sockets,
        nodes=nodes,
        caches=caches,
        arch=spec.arch,
        vendor=spec.vendor or None,
        isolated=CpuSet(spec.isolated),
        nohz_full=CpuSet(spec.nohz_full or ()),
        cmdline=spec.cmdline,
        memory_total_kib=sum(n.mem_total_kib or 0 for n in nodes),
        kind_evidence=_kinds(spec)[1],
    )


def host_named(name: str) -> Host:
    """One of the named hosts of ``data/hosts/hosts.toml``."""
    return host_of(NAMED_HOSTS[name])
