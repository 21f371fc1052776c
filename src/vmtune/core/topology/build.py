"""Build a :class:`Host` from raw per-CPU and per-node records: the one place topology rules live.

Both readers (``adapters/sysfs.py`` and ``xmlmap/capabilities.py``) turn their input into
:class:`CpuRecord` / :class:`NodeRecord` and call :func:`build_host`, so they agree by construction.
The rules follow what hwloc's Linux backend (``topology-linux.c``, ``look_sysfscpu``/``look_sysfsnode``)
does, because ``lstopo`` is the independent count we test against:

1. Only online CPUs have topology. A CPU is a thread of exactly one core, one socket, one node.
2. Cores come from the thread-siblings mask (``core_cpus``/``thread_siblings``, libvirt ``siblings``)
   intersected with the online CPUs. Equal ``core_id`` never makes SMT on its own: AMD Magny-Cours
   repeats core_id 0-5 on both dies of a package (libvirt-test3), s390 repeats it across CPUs that
   the kernel reports as single-thread cores. Only when a CPU has no siblings data at all is it grouped
   by (socket, die, cluster, core_id, NUMA node): the node stands in for the die that old kernels and
   libvirt-trimmed dumps don't report.
3. Sockets come from the package mask (``package_cpus``/``core_siblings``) when there is one, exactly
   like hwloc (POWER7 reports ``physical_package_id=-1`` but per-core ``core_siblings``, so hwloc
   shows one package per mask); otherwise from ``physical_package_id`` with -1/None meaning "unknown",
   i.e. all such CPUs in one socket.
4. NUMA: each CPU belongs to the first node (by id) that lists it. A node whose CPUs were all already
   claimed by earlier nodes is dropped with a warning: buggy BIOSes list every CPU in every node and
   hwloc ignores such nodes too. CPU-less nodes (PMEM, GPU memory, memory-only) are kept.
5. Cache groups: distinct sets of online CPUs sharing one cache of a level in ``CACHE_LEVELS`` (data or
   unified caches only).
6. Core kinds (big, little) on hybrid hosts: ``core.topology.kinds``. s390 books and drawers: the CPUs
   reporting one (drawer id, book id), and one drawer id.

Dense ``Core.index``/``Socket.index``/cache indices are assigned by lowest CPU id for stable output.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from vmtune.core.topology.kinds import core_kinds
from vmtune.core.topology.model import CACHE_LEVELS, CacheGroup, Core, Cpu, Host, Node, Socket
from vmtune.core.topology.records import CacheRecord, CpuRecord, NodeRecord, distances_from_row
from vmtune.cpuset import CpuSet
from vmtune.errors import InputError

__all__ = ["CacheRecord", "CpuRecord", "NodeRecord", "build_host", "distances_from_row"]


@dataclass(slots=True)
class _Acc:
    """Mutable accumulator for one group while building (never escapes this module)."""

    key: object
    first: int
    cpus: int = 0


def build_host(
    *,
    name: str,
    cpus: Iterable[CpuRecord],
    nodes: Sequence[NodeRecord] = (),
    arch: str | None = None,
    vendor: str | None = None,
    model: str | None = None,
    isolated: CpuSet | None = None,
    nohz_full: CpuSet | None = None,
    cmdline: str | None = None,
    memory_total_kib: int | None = None,
    warnings: Iterable[str] = (),
    pmu_kinds: tuple[CpuSet, CpuSet] | None = None,
) -> Host:
    """Assemble the frozen :class:`Host`; raise InputError when no CPU is online. ``pmu_kinds``: the CPUs
    of ``/sys/devices/cpu_core`` and ``cpu_atom`` where the kernel has them (Intel hybrid)."""
    warn: list[str] = list(warnings)
    records = sorted(cpus, key=lambda r: r.id)
    online_bits = _online_bits(name, records)
    if not nodes:
        nodes = (NodeRecord(id=0, cpus=CpuSet(r.id for r in records), mem_total_kib=memory_total_kib),)
    numa = _assign_nodes(records, nodes, online_bits, warn)
    no_topology = CpuSet(r.id for r in records if r.online and not r.has_topology)
    if no_topology:
        warn.append(f"online CPUs {no_topology} report no topology; treating each as its own core")
    online_recs = [r for r in records if r.online]
    masked = _Masker(online_bits)
    socket_key = _socket_keys(online_recs, masked)
    sockets, socket_index = _sockets(records, _group(socket_key))
    cores_acc = _group(_core_keys(online_recs, masked, socket_key, numa.node_of))
    caches, cache_index = _cache_groups(online_recs, masked)
    cores, core_index = _cores(records, cores_acc, socket_index, numa.node_of, cache_index)
    cores = _books(cores, online_recs)
    clusters = {
        r.id: (socket_key[r.id], r.die_id, r.cluster_id) for r in online_recs if r.cluster_id is not None
    }
    kinds, evidence = core_kinds(cores, caches, pmu=pmu_kinds, clusters=clusters)
    if evidence is not None:
        cores = tuple(replace(core, kind=kind) for core, kind in zip(cores, kinds, strict=True))
    out_nodes = _nodes(numa, online_bits)
    totals = [n.mem_total_kib for n in out_nodes if n.mem_total_kib is not None]
    return Host(
        name=name,
        cpus=_cpus(
            records,
            nodes=nodes,
            node_of=numa.node_of,
            socket_index=socket_index,
            core_index=core_index,
            cache_index=cache_index,
        ),
        cores=cores,
        sockets=sockets,
        nodes=out_nodes,
        caches=caches,
        arch=arch,
        vendor=vendor,
        model=model,
        isolated=isolated if isolated is not None else CpuSet(),
        nohz_full=nohz_full if nohz_full is not None else CpuSet(),
        cmdline=cmdline,
        memory_total_kib=sum(totals) if totals else memory_total_kib,
        kind_evidence=evidence,
        warnings=tuple(warn),
    )


def _online_bits(name: str, records: Sequence[CpuRecord]) -> int:
    """The online CPUs as a bitmap; InputError on a CPU listed twice or none online."""
    if len({r.id for r in records}) != len(records):
        raise InputError(f"{name}: CPU ids listed twice")
    online_bits = 0
    for rec in records:
        if rec.online:
            online_bits |= 1 << rec.id
    if not online_bits:
        raise InputError(f"{name}: no online CPUs")
    return online_bits


@dataclass(frozen=True, slots=True, kw_only=True)
class _Numa:
    node_of: dict[int, int]
    """Online CPU -> the node that claims it."""
    kept: list[tuple[NodeRecord, int]]
    """The nodes kept, each with the bitmap of the CPUs it claims."""


def _assign_nodes(
    records: Sequence[CpuRecord], nodes: Sequence[NodeRecord], online_bits: int, warn: list[str]
) -> _Numa:
    """Rule 4: each CPU goes to the first node listing it; nodes listing only claimed CPUs are dropped."""
    all_bits = CpuSet(r.id for r in records).bits
    node_of: dict[int, int] = {}
    kept: list[tuple[NodeRecord, int]] = []
    claimed = 0
    dropped: list[int] = []
    for rec_n in sorted(nodes, key=lambda n: n.id):
        bits = rec_n.cpus.bits & all_bits
        mine = bits & ~claimed
        if bits and not mine:
            dropped.append(rec_n.id)
            continue
        if mine != bits:
            warn.append(f"NUMA node {rec_n.id} lists CPUs {CpuSet.from_bits(bits & claimed)} that an earlier "
                        "node also lists; they stay with the earlier node")  # fmt: skip
        claimed |= mine
        kept.append((rec_n, mine))
        node_of.update(dict.fromkeys(_ids(mine), rec_n.id))
    if dropped:
        warn.append(
            f"NUMA nodes {CpuSet(dropped)} list only CPUs that earlier nodes already list "
            "(buggy firmware SRAT); ignoring them as hwloc does"
        )
    orphans = CpuSet.from_bits(online_bits & ~claimed)
    if orphans:
        _adopt(records, kept, node_of, orphans, warn)
    return _Numa(node_of=node_of, kept=kept)


def _adopt(
    records: Sequence[CpuRecord],
    kept: list[tuple[NodeRecord, int]],
    node_of: dict[int, int],
    orphans: CpuSet,
    warn: list[str],
) -> None:
    """CPUs in no node go to a node of their own socket (package id) when one has CPUs there, else to
    the first node: a CPU counted in another socket's node would draw the reserve and the emulator there."""
    package = {r.id: r.package_id for r in records}
    by_node: dict[int, list[int]] = {}
    for cpu in orphans:
        home = next(
            (i for i, (_, bits) in enumerate(kept)
             if any(package.get(c) == package.get(cpu) for c in _ids(bits))),
            0,
        )  # fmt: skip
        by_node.setdefault(home, []).append(cpu)
    for i, cpus in sorted(by_node.items()):
        node, bits = kept[i]
        warn.append(f"online CPUs {CpuSet(cpus)} are in no NUMA node; counting them in node {node.id}")
        node_of.update(dict.fromkeys(cpus, node.id))
        kept[i] = (node, bits | CpuSet(cpus).bits)


def _socket_keys(online_recs: Sequence[CpuRecord], masked: _Masker) -> dict[int, object]:
    """Rule 3: the package mask when there is one, else the package id (-1/None: one unknown socket)."""
    socket_key: dict[int, object] = {}
    for rec in online_recs:
        if rec.package_cpus is not None:
            socket_key[rec.id] = ("mask", masked(rec.package_cpus, rec.id))
        else:
            pkg = rec.package_id if rec.package_id is not None and rec.package_id >= 0 else None
            socket_key[rec.id] = ("id", pkg)
    return socket_key


def _core_keys(
    online_recs: Sequence[CpuRecord], masked: _Masker, socket_key: dict[int, object], node_of: dict[int, int]
) -> dict[int, object]:
    """Rule 2: the siblings mask; without one, (socket, die, cluster, core_id, node); else the CPU alone."""
    core_key: dict[int, object] = {}
    for rec in online_recs:
        if rec.siblings is not None:
            core_key[rec.id] = ("mask", masked(rec.siblings, rec.id))
        elif not rec.has_topology or rec.core_id is None:
            core_key[rec.id] = ("solo", rec.id)
        else:
            core_key[rec.id] = ("id", socket_key[rec.id], rec.die_id, rec.cluster_id, rec.core_id,
                                node_of.get(rec.id))  # fmt: skip
    return core_key


def _cache_groups(
    online_recs: Sequence[CpuRecord], masked: _Masker
) -> tuple[tuple[CacheGroup, ...], dict[int, dict[int, int]]]:
    """Rule 5: (groups of every tracked level, CPU -> {level: group index})."""
    cache_key: dict[int, dict[int, object]] = {lvl: {} for lvl in CACHE_LEVELS}
    cache_meta: dict[tuple[int, object], CacheRecord] = {}
    for rec in online_recs:
        for cache in rec.caches:
            keys = cache_key.get(cache.level)
            if keys is None or rec.id in keys:
                continue
            bits = keys[rec.id] = masked(cache.cpus, rec.id)
            if (cache.level, bits) not in cache_meta:
                cache_meta[cache.level, bits] = cache
    groups: list[CacheGroup] = []
    index: dict[int, dict[int, int]] = {}
    for level in CACHE_LEVELS:
        for acc in _group(cache_key[level]):
            meta = cache_meta.get((level, acc.key))
            idx = len(groups)
            for cpu in _ids(acc.cpus):
                index.setdefault(cpu, {})[level] = idx
            groups.append(
                CacheGroup(
                    index=idx,
                    level=level,
                    cpus=CpuSet.from_bits(acc.cpus),
                    size_kib=meta.size_kib if meta else None,
                    cache_id=meta.cache_id if meta else None,
                )
            )
    return tuple(groups), index


def _sockets(records: Sequence[CpuRecord], accs: Sequence[_Acc]) -> tuple[tuple[Socket, ...], dict[int, int]]:
    """(sockets in first-CPU order, CPU -> socket index)."""
    by_id = {r.id: r for r in records}
    index: dict[int, int] = {}
    sockets: list[Socket] = []
    for idx, acc in enumerate(accs):
        sockets.append(
            Socket(index=idx, package_id=by_id[acc.first].package_id, cpus=CpuSet.from_bits(acc.cpus))
        )
        index.update(dict.fromkeys(_ids(acc.cpus), idx))
    return tuple(sockets), index


def _cores(
    records: Sequence[CpuRecord],
    accs: Sequence[_Acc],
    socket_index: dict[int, int],
    node_of: dict[int, int],
    cache_index: dict[int, dict[int, int]],
) -> tuple[tuple[Core, ...], dict[int, int]]:
    """(cores in first-CPU order, CPU -> core index); a core's node and caches are its first CPU's."""
    by_id = {r.id: r for r in records}
    index: dict[int, int] = {}
    cores: list[Core] = []
    for idx, acc in enumerate(accs):
        first = acc.first
        cores.append(
            Core(
                index=idx,
                cpus=CpuSet.from_bits(acc.cpus),
                socket=socket_index[first],
                node=node_of.get(first, -1),
                caches=cache_index.get(first, {}),
                capacity=by_id[first].capacity,
            )
        )
        index.update(dict.fromkeys(_ids(acc.cpus), idx))
    return tuple(cores), index


def _cpus(
    records: Sequence[CpuRecord],
    *,
    nodes: Sequence[NodeRecord],
    node_of: dict[int, int],
    socket_index: dict[int, int],
    core_index: dict[int, int],
    cache_index: dict[int, dict[int, int]],
) -> tuple[Cpu, ...]:
    return tuple(
        Cpu(
            id=rec.id,
            online=rec.online,
            socket=socket_index.get(rec.id, -1),
            core=core_index.get(rec.id, -1),
            node=node_of[rec.id] if rec.id in node_of else _raw_node(rec.id, nodes),
            package_id=rec.package_id,
            die_id=rec.die_id,
            cluster_id=rec.cluster_id,
            core_id=rec.core_id,
            book_id=rec.book_id,
            drawer_id=rec.drawer_id,
            capacity=rec.capacity,
            caches=cache_index.get(rec.id, {}),
        )
        for rec in records
    )


def _books(cores: tuple[Core, ...], online_recs: Sequence[CpuRecord]) -> tuple[Core, ...]:
    """Rule 6: each core's dense book and drawer index (its first CPU's), where the source has them."""
    book: dict[int, object] = {r.id: (r.drawer_id, r.book_id) for r in online_recs if r.book_id is not None}
    drawer: dict[int, object] = {r.id: r.drawer_id for r in online_recs if r.drawer_id is not None}
    if not book and not drawer:
        return cores
    book_of = {cpu: i for i, acc in enumerate(_group(book)) for cpu in _ids(acc.cpus)}
    drawer_of = {cpu: i for i, acc in enumerate(_group(drawer)) for cpu in _ids(acc.cpus)}
    return tuple(
        replace(c, book=book_of.get(c.cpus.first(), -1), drawer=drawer_of.get(c.cpus.first(), -1))
        for c in cores
    )


def _nodes(numa: _Numa, online_bits: int) -> tuple[Node, ...]:
    kept_ids = {n.id for n, _ in numa.kept}
    return tuple(
        Node(
            id=n.id,
            cpus=CpuSet.from_bits(bits & online_bits),
            mem_total_kib=n.mem_total_kib,
            mem_free_kib=n.mem_free_kib,
            hugepages=tuple(sorted(n.hugepages, key=lambda h: h.size_kib)),
            distances=tuple((nid, d) for nid, d in n.distances if nid in kept_ids),
        )
        for n, bits in numa.kept
    )


class _Masker:
    """``(mask & online) | cpu`` as a grouping key, computed once per mask object: the readers hand the
    same CpuSet to every CPU of a core, package or cache group, and 1,000-bit ints are not free."""

    __slots__ = ("_memo", "_online")

    def __init__(self, online_bits: int) -> None:
        self._online = online_bits
        self._memo: dict[int, int] = {}  # id(CpuSet) -> bits & online (the sets outlive build_host)

    def __call__(self, cpus: CpuSet, cpu: int) -> int:
        bits = self._memo.get(id(cpus))
        if bits is None:
            bits = self._memo[id(cpus)] = cpus.bits & self._online
        return bits if bits >> cpu & 1 else bits | (1 << cpu)


def _group(keys: dict[int, object]) -> list[_Acc]:
    """Partition CPUs by key; groups ordered by their lowest CPU id."""
    groups: dict[object, _Acc] = {}
    for cpu in sorted(keys):
        key = keys[cpu]
        acc = groups.get(key)
        if acc is None:
            acc = groups[key] = _Acc(key=key, first=cpu)
        acc.cpus |= 1 << cpu
    return sorted(groups.values(), key=lambda a: a.first)


def _ids(bits: int) -> list[int]:
    """The CPU ids of a bitmap, ascending (cheaper than iterating a CpuSet in the per-CPU loops)."""
    out: list[int] = []
    while bits:
        low = bits & -bits
        out.append(low.bit_length() - 1)
        bits ^= low
    return out


def _raw_node(cpu: int, nodes: Sequence[NodeRecord]) -> int:
    """Node of an offline CPU as the source lists it (-1 when no node lists it)."""
    for n in sorted(nodes, key=lambda n: n.id):
        if cpu in n.cpus:
            return n.id
    return -1
