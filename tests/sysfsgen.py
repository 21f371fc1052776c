"""Deterministic sysfs/procfs roots and matching ``virsh capabilities`` XML for named test hosts.

The hosts are specified in ``data/hosts/hosts.toml``; ``python tests/sysfsgen.py tests/data/hosts``
regenerates the committed trees (``--capture`` also snapshots this machine as ``this-machine/``).
Kernel behaviour kept on purpose, because readers must survive it: masks print nr_cpu_ids bits in 32-bit
words, the top word only as wide as needed (lib/vsprintf.c bitmap_string: 2 CPUs print ``3``, 40 print
``ff,ffffffff``); an offline CPU keeps only ``cpuN/online`` and its ``nodeN/cpuM`` link (libvirt counts it
there) and leaves every other mask; ``offline`` lists absent CPUs too; x86 cpu0 has no ``online``; only x86
has ``die_*``; x86 ``cluster_id`` is the L2 id, so a cluster is an L2 sharing group everywhere here.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path
from typing import Any, Literal, NamedTuple

HOSTS_DIR = Path(__file__).parent / "data" / "hosts"
_CPU, _NODE = "sys/devices/system/cpu", "sys/devices/system/node"


@dataclass(frozen=True, slots=True)
class CoreKind:
    """The cores of one kind in every CPU node (a hybrid host has several kinds)."""

    cores: int
    threads: int = 1
    l2_cores: int = 1  # cores sharing one L2; 1 = private
    l2_kib: int = 1024
    capacity: int | None = None  # cpuN/cpu_capacity; None = no such file


class Cpu(NamedTuple):
    """One present CPU. ``core``, ``l2``, ``l3`` number groups host-wide and double as kernel cache ids."""

    id: int
    online: bool
    socket: int
    node: int
    core: int
    core_id: int  # within the package, as topology/core_id
    l2: int  # also the cluster_id
    l3: int  # -1 = no L3
    kind: int  # index into HostSpec.core_kinds()


class NodeMem(NamedTuple):
    total: int  # KiB
    free: int
    huge: dict[int, tuple[int, int]]  # size KiB -> (nr, free)


@dataclass(frozen=True, slots=True, kw_only=True)
class HostSpec:
    """A machine. CPU nodes take the node ids not in ``cpuless_nodes``, socket by socket."""

    name: str
    arch: Literal["x86_64", "aarch64"] = "x86_64"
    sockets: int = 1
    nodes_per_socket: int = 1
    cores_per_node: int = 2
    threads_per_core: int = 1
    sibling_numbering: Literal["interleaved", "adjacent"] = "adjacent"
    l2_cores: int = 1
    l3_cores: int = 0  # cores per L3 group, counted within a socket (may span SNC nodes); 0 = no L3
    l2_kib: int = 1024
    l3_kib: int = 16384
    kinds: tuple[CoreKind, ...] = ()  # hybrid: replaces cores_per_node/threads_per_core/l2_cores per node
    mem_per_node_kib: int = 16 * 1024 * 1024
    hugepages: Mapping[int, tuple[int, int]] = field(default_factory=dict)  # size KiB -> (nr, free) per node
    node_mem: Mapping[int, NodeMem] = field(default_factory=dict)  # node id -> its memory, replacing the
    # mem_per_node_kib/hugepages default (nodes that differ: CPU-less memory, a pool on one node only)
    hugetlb: bool = True  # False: a kernel without hugetlbfs lists no hugepage pools at all
    cache_info: bool = True  # False: no cpuN/cache (some VMs and firmware): the host has no cache groups
    offline: tuple[int, ...] = ()
    memoryless_nodes: tuple[int, ...] = ()  # node ids with CPUs but MemTotal 0
    cpuless_nodes: tuple[int, ...] = ()  # node ids with memory and no CPUs
    isolated: tuple[int, ...] = ()
    nohz_full: tuple[int, ...] | None = None  # None = kernel without CONFIG_NO_HZ_FULL: no file
    cmdline: str | None = None
    distances: tuple[tuple[int, ...], ...] = ()  # SLIT by node id; () = 12 same socket, 21 (32 if another
    # group of 4 sockets) between sockets and to CPU-less nodes
    possible_cpus: int = 0  # 0 = the present CPUs
    vendor: str = ""
    generated_only: bool = False  # too big to commit: tests and benchmarks write it to a tmp dir
    note: str = ""

    def __post_init__(self) -> None:
        kinds, nodes, cpus = self.core_kinds(), set(self.node_ids()), self.cpu_count()
        named, l3 = {*self.offline, *self.isolated, *(self.nohz_full or ())}, self.l3_cores or 1
        problems = {
            "kinds must add up to cores_per_node": sum(k.cores for k in kinds) != self.cores_per_node,
            "an L2 group would straddle a node or kind": any(k.cores % k.l2_cores for k in kinds),
            "an L3 group would straddle sockets": (self.nodes_per_socket * self.cores_per_node) % l3 != 0,
            "CPU sets name absent CPUs": not named <= set(range(cpus)) or 0 < self.possible_cpus < cpus,
            "x86 cpu0 cannot go offline": self.arch == "x86_64" and 0 in self.offline,
            "bad node ids": not {*self.cpuless_nodes, *self.memoryless_nodes, *self.node_mem} <= nodes,
            "hugepages without hugetlb": not self.hugetlb and any(self.node_memory(n).huge for n in nodes),
        }
        if any(problems.values()):
            raise ValueError(f"{self.name}: " + "; ".join(text for text, bad in problems.items() if bad))

    def core_kinds(self) -> tuple[CoreKind, ...]:
        default = CoreKind(self.cores_per_node, self.threads_per_core, self.l2_cores, self.l2_kib)
        return self.kinds or (default,)

    def cpu_count(self) -> int:
        return self.sockets * self.nodes_per_socket * sum(k.cores * k.threads for k in self.core_kinds())

    def node_ids(self) -> list[int]:
        return list(range(self.sockets * self.nodes_per_socket + len(self.cpuless_nodes)))

    def cpu_node_ids(self) -> list[int]:
        return [n for n in self.node_ids() if n not in self.cpuless_nodes]

    def hugepage_sizes(self) -> list[int]:
        # what the kernel lists even with none reserved: x86 with pdpe1gb; arm64 4K pages and cont-PTE sizes
        if not self.hugetlb:
            return []
        reserved = {*self.hugepages, *(size for mem in self.node_mem.values() for size in mem.huge)}
        return sorted({2048, 1048576, *reserved} | ({64, 32768} if self.arch == "aarch64" else set()))

    def distance(self, a: int, b: int) -> int:
        socket = {n: i // self.nodes_per_socket for i, n in enumerate(self.cpu_node_ids())}
        sa, sb = socket.get(a, -1), socket.get(b, -1)  # -1: a CPU-less node
        if self.distances or a == b or sa == sb >= 0:
            return self.distances[a][b] if self.distances else 10 if a == b else 12
        return 21 if min(sa, sb) < 0 or sa // 4 == sb // 4 else 32

    def node_memory(self, node: int) -> NodeMem:
        if node in self.node_mem:
            return self.node_mem[node]
        if node in self.memoryless_nodes:
            return NodeMem(0, 0, {})
        left = self.mem_per_node_kib - sum(size * nr for size, (nr, _free) in self.hugepages.items())
        return NodeMem(self.mem_per_node_kib, left * 7 // 8, dict(self.hugepages))  # MemFree: 7/8 of the rest

    def layout(self) -> list[Cpu]:
        """Every present CPU by id; cores are numbered socket by socket, node by node, kind by kind."""
        kinds, cores, l2 = self.core_kinds(), list[Cpu](), 0
        nps, per_socket = self.nodes_per_socket, self.nodes_per_socket * self.cores_per_node
        for s in range(self.sockets):
            for node in self.cpu_node_ids()[s * nps : (s + 1) * nps]:
                for k, kind in enumerate(kinds):
                    for c in range(kind.cores):
                        g, l2_group = len(cores), l2 + c // kind.l2_cores
                        l3 = g // self.l3_cores if self.l3_cores else -1
                        cores.append(Cpu(-1, True, s, node, g, g - s * per_socket, l2_group, l3, k))
                    l2 += kind.cores // kind.l2_cores
        # Intel firmware numbers the first thread of every core before any second one ("interleaved":
        # siblings N and N+cores); other firmware numbers a core's threads next to each other ("adjacent").
        if self.sibling_numbering == "interleaved":
            most = max(k.threads for k in kinds)
            order = [c for t in range(most) for c in cores if kinds[c.kind].threads > t]
        else:
            order = [c for c in cores for _ in range(kinds[c.kind].threads)]
        return [c._replace(id=i, online=i not in self.offline) for i, c in enumerate(order)]


def cpulist(cpus: Iterable[int]) -> str:
    """Kernel list format: ``0-3,8,10-11`` (two neighbours print as a range too)."""
    runs = [[c for _, c in run] for _, run in groupby(enumerate(sorted(set(cpus))), lambda p: p[1] - p[0])]
    return ",".join(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}" for run in runs)


def parse_cpulist(text: str) -> tuple[int, ...]:
    """The inverse of ``cpulist`` (no ``^`` exclusions: the kernel never prints them)."""
    ranges = [part.partition("-") for part in text.strip().split(",") if part]
    return tuple(cpu for a, _, b in ranges for cpu in range(int(a), int(b or a) + 1))


def cpumask(cpus: Iterable[int], nbits: int) -> str:
    value, words = sum(1 << c for c in set(cpus)), (nbits + 31) // 32
    width = [8] * (words - 1) + [(nbits - 32 * (words - 1) + 3) // 4]
    return ",".join(f"{(value >> (32 * w)) & 0xFFFFFFFF:0{width[w]}x}" for w in reversed(range(words)))


def _groups(cpus: Sequence[Cpu], attr: str) -> dict[int, list[int]]:
    """Online CPU ids by ``attr``: the kernel drops offline CPUs from every shared mask."""
    online = sorted((c for c in cpus if c.online), key=lambda c: getattr(c, attr))
    return {key: [c.id for c in group] for key, group in groupby(online, lambda c: getattr(c, attr))}


def _hugepages(mems: Sequence[NodeMem], size: int) -> tuple[int, int]:
    return sum(m.huge.get(size, (0, 0))[0] for m in mems), sum(m.huge.get(size, (0, 0))[1] for m in mems)


def _meminfo(mems: Sequence[NodeMem], node: int | None) -> str:
    """``nodeN/meminfo`` (drivers/base/node.c: ``Node 0 MemTotal:  %8lu kB``, ``HugePages_Total: %5u``)
    or, for ``node=None``, ``/proc/meminfo``; both count the hugepages of the default size (2M) only."""
    total, free = sum(m.total for m in mems), sum(m.free for m in mems)
    (nr, hfree), proc, pre = _hugepages(mems, 2048), node is None, f"Node {node} " * (node is not None)
    kib = {"MemTotal": total, "MemFree": free, "MemAvailable": free, "MemUsed": total - free}
    kib.pop("MemUsed" if proc else "MemAvailable")
    counts = {"HugePages_Total": nr, "HugePages_Free": hfree, "HugePages_Rsvd": 0, "HugePages_Surp": 0}
    key, num = (16, 8) if proc else (17, 5)
    lines = [f"{pre}{k + ':':<16}{v:>8} kB" for k, v in kib.items()]
    lines += [f"{pre}{k + ':':<{key}}{v:>{num}}" for k, v in counts.items() if proc or k != "HugePages_Rsvd"]
    hugetlb = sum(size * n for m in mems for size, (n, _free) in m.huge.items())
    tail = {"Hugepagesize": 2048, "Hugetlb": hugetlb} if proc else {}
    return "\n".join(lines + [f"{k + ':':<16}{v:>8} kB" for k, v in tail.items()])


def sysfs_files(spec: HostSpec) -> tuple[dict[str, str], dict[str, str]]:
    """``({relative path: content}, {relative symlink: target})``: the root ``write_sysfs`` writes."""
    cpus, nodes, x86 = spec.layout(), spec.node_ids(), spec.arch == "x86_64"
    nbits = spec.possible_cpus or len(cpus)  # nr_cpu_ids: the width of every kernel CPU mask
    online = [c.id for c in cpus if c.online]
    by = {attr: _groups(cpus, attr) for attr in ("core", "socket", "l2", "l3", "node", "kind")}
    mems = [spec.node_memory(n) for n in nodes]
    files: dict[str, object] = {f"{_CPU}/present": cpulist(range(len(cpus)))}
    files |= {f"{_CPU}/possible": cpulist(range(nbits)), f"{_CPU}/online": cpulist(online)}
    files[f"{_CPU}/offline"] = cpulist(set(range(nbits)) - {*online})
    files |= {f"{_CPU}/kernel_max": 8191, f"{_CPU}/isolated": cpulist(spec.isolated)}  # NR_CPUS-1 of distros
    files |= {f"{_CPU}/nohz_full": cpulist(spec.nohz_full)} if spec.nohz_full is not None else {}
    # topology mask files and the Cpu field whose group they show (die_cpus only on x86)
    masks = {"thread_siblings": "core", "core_cpus": "core", "core_siblings": "socket"}
    masks |= {"package_cpus": "socket", "cluster_cpus": "l2"} | ({"die_cpus": "socket"} if x86 else {})
    for c in cpus:
        d, kind = f"{_CPU}/cpu{c.id}", spec.core_kinds()[c.kind]
        files |= {f"{d}/online": int(c.online)} if c.id or not x86 else {}
        if not c.online:
            continue
        files |= {f"{d}/cpu_capacity": kind.capacity} if kind.capacity is not None else {}
        ids = {"physical_package_id": c.socket, "core_id": c.core_id, "cluster_id": c.l2, "die_id": 0}
        files |= {f"{d}/topology/{name}": value for name, value in ids.items() if x86 or name != "die_id"}
        for stem, attr in masks.items():
            files[f"{d}/topology/{stem}"] = cpumask(by[attr][getattr(c, attr)], nbits)
            files[f"{d}/topology/{stem}_list"] = cpulist(by[attr][getattr(c, attr)])
        caches = [(1, "Data", 32, "core"), (1, "Instruction", 32, "core"), (2, "Unified", kind.l2_kib, "l2")]
        caches += [(3, "Unified", spec.l3_kib, "l3")] * (c.l3 >= 0)
        for index, (level, type_, kib, attr) in enumerate(caches * spec.cache_info):
            k, group = f"{d}/cache/index{index}", getattr(c, attr)
            files |= {f"{k}/level": level, f"{k}/type": type_, f"{k}/size": f"{kib}K", f"{k}/id": group}
            files |= {f"{k}/coherency_line_size": 64, f"{k}/shared_cpu_list": cpulist(by[attr][group])}
            files[f"{k}/shared_cpu_map"] = cpumask(by[attr][group], nbits)
    pmus = ("cpu_core", "cpu_atom") if x86 and len(spec.core_kinds()) == 2 else ()  # Intel hybrid: P, E
    files |= {f"sys/devices/{pmu}/cpus": cpulist(by["kind"].get(i, [])) for i, pmu in enumerate(pmus)}
    with_mem = [n for n, m in zip(nodes, mems, strict=True) if m.total]
    files |= {f"{_NODE}/{k}": cpulist(nodes) for k in ("online", "possible")}
    files |= {f"{_NODE}/{k}": cpulist(with_mem) for k in ("has_memory", "has_normal_memory")}
    files[f"{_NODE}/has_cpu"] = cpulist(by["node"])
    links: dict[str, str] = {}
    for n, mem in zip(nodes, mems, strict=True):
        d, members = f"{_NODE}/node{n}", by["node"].get(n, [])
        files |= {f"{d}/cpulist": cpulist(members), f"{d}/cpumap": cpumask(members, nbits)}
        files[f"{d}/distance"] = " ".join(str(spec.distance(n, m)) for m in nodes)
        files[f"{d}/meminfo"] = _meminfo([mem], n)
        for size in spec.hugepage_sizes():
            h, (nr, free) = f"{d}/hugepages/hugepages-{size}kB", _hugepages([mem], size)
            files |= {f"{h}/nr_hugepages": nr, f"{h}/free_hugepages": free, f"{h}/surplus_hugepages": 0}
        links |= {f"{d}/cpu{c.id}": f"../../cpu/cpu{c.id}" for c in cpus if c.node == n}
    for size in spec.hugepage_sizes():
        h, (nr, free) = f"sys/kernel/mm/hugepages/hugepages-{size}kB", _hugepages(mems, size)
        files |= {f"{h}/nr_hugepages": nr, f"{h}/free_hugepages": free}
        files |= {f"{h}/{k}": 0 for k in ("resv_hugepages", "surplus_hugepages", "nr_overcommit_hugepages")}
    files["proc/meminfo"] = _meminfo(mems, None)
    files |= {"proc/cmdline": spec.cmdline} if spec.cmdline is not None else {}
    return {path: f"{text}\n" for path, text in sorted(files.items())}, links


def write_sysfs(spec: HostSpec, root: Path) -> None:
    """Write ``spec`` below ``root`` (``root/sys/...``, ``root/proc/...``) as its kernel would show it."""
    files, links = sysfs_files(spec)
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    for path, target in links.items():
        (root / path).symlink_to(target)


def _libvirt_topology(spec: HostSpec, cpus: Sequence[Cpu]) -> tuple[int, int, int]:
    """virHostCPUGetInfoPopulateLinux: sockets *per node*, max cores per socket, max siblings; when
    nodes*sockets*cores*threads != present CPUs (hybrid, CPU-less nodes) libvirt says 1 x CPUs x 1."""
    siblings, sockets, cores, threads = _groups(cpus, "core"), 0, 0, 0
    for node in spec.node_ids():
        mine = [c for c in cpus if c.online and c.node == node]
        per_socket = [len({c.core_id for c in mine if c.socket == s}) for s in {c.socket for c in mine}]
        sockets, cores = max(sockets, len(per_socket)), max([cores, *per_socket])
        threads = max([threads, *(len(siblings[c.core]) for c in mine)])
    if len(spec.node_ids()) * sockets * cores * threads != len(cpus):
        return 1, len(cpus), 1
    return sockets, cores, threads


_El = tuple[str, Mapping[str, object], "list[_El] | str"]


def _emit(el: _El, depth: int = 1) -> list[str]:
    """libvirt's XML style: two-space indent, single-quoted attributes, ``<x/>`` when empty."""
    (tag, attrs, body), pad = el, "  " * depth
    head = pad + "<" + tag + "".join(f" {k}='{v}'" for k, v in attrs.items())
    if not body or isinstance(body, str):
        return [f"{head}>{body}</{tag}>" if body else f"{head}/>"]
    return [f"{head}>", *(line for child in body for line in _emit(child, depth + 1)), f"{pad}</{tag}>"]


def write_capabilities(spec: HostSpec, *, clusters: bool = True) -> str:
    """``virsh capabilities`` (host part) for ``spec`` as libvirt >= 10.0 prints it; ``clusters=False`` gives
    the 9.0 shape, without ``cluster_id``/``clusters``. Offline CPUs are left out; only L3 banks are shown."""
    cpus, size = spec.layout(), spec.l3_kib * 1024
    siblings, l3 = _groups(cpus, "core"), {k: v for k, v in _groups(cpus, "l3").items() if k >= 0}
    l3 = l3 if spec.cache_info else {}  # libvirt reads its cache banks from the same cpuN/cache files
    sockets, cores, threads = _libvirt_topology(spec, cpus)
    topo = {"sockets": sockets, "dies": 1, "clusters": 1, "cores": cores, "threads": threads}
    topo = {k: v for k, v in topo.items() if clusters or k != "clusters"}
    cpu: list[_El] = [("arch", {}, spec.arch)] + [("vendor", {}, spec.vendor)] * bool(spec.vendor)
    cpu += [("topology", topo, "")]
    cpu += [("pages", {"unit": "KiB", "size": s}, "") for s in [4, *spec.hugepage_sizes()]]
    cells: list[_El] = []
    for n in spec.node_ids():
        mem = spec.node_memory(n)
        pages = {4: (mem.total - sum(s * nr for s, (nr, _f) in mem.huge.items())) // 4}
        pages |= {s: mem.huge.get(s, (0, 0))[0] for s in spec.hugepage_sizes()}
        body: list[_El] = [("memory", {"unit": "KiB"}, str(mem.total))]
        body += [("pages", {"unit": "KiB", "size": s}, str(count)) for s, count in pages.items()]
        dist: list[_El] = [("sibling", {"id": m, "value": spec.distance(n, m)}, "") for m in spec.node_ids()]
        listed: list[_El] = []
        for c in (c for c in cpus if c.online and c.node == n):
            ids = {"id": c.id, "socket_id": c.socket, "die_id": 0, "cluster_id": c.l2, "core_id": c.core_id}
            ids = {k: v for k, v in ids.items() if clusters or k != "cluster_id"}
            listed.append(("cpu", ids | {"siblings": cpulist(siblings[c.core])}, ""))
        body += [("distances", {}, dist), ("cpus", {"num": len(listed)}, listed)]
        cells.append(("cell", {"id": n}, body))
    shift = next(s for s in (30, 20, 10, 0) if size % (1 << s) == 0)  # virFormatIntPretty: largest exact unit
    unit = {30: "GiB", 20: "MiB", 10: "KiB", 0: "B"}[shift]
    bank = {"level": 3, "type": "both", "size": size >> shift, "unit": unit}
    banks: list[_El] = [("bank", {"id": b} | bank | {"cpus": cpulist(l3[b])}, "") for b in sorted(l3)]
    host: list[_El] = [("uuid", {}, str(uuid.uuid5(uuid.NAMESPACE_URL, f"vmtune-fixture:{spec.name}")))]
    host += [("cpu", {}, cpu), ("power_management", {}, ""), ("iommu", {"support": "yes"}, "")]
    migration: list[_El] = [("live", {}, ""), ("uri_transports", {}, [("uri_transport", {}, "tcp")])]
    host += [("migration_features", {}, migration)]
    host += [("topology", {}, [("cells", {"num": len(cells)}, cells)])]
    host += [("cache", {}, banks)] * bool(banks)
    host += [("secmodel", {}, [("model", {}, "none"), ("doi", {}, "0")])]
    return "\n".join(["<capabilities>", "", *_emit(("host", {}, host)), "", "</capabilities>", ""])


def load_hosts(path: Path = HOSTS_DIR / "hosts.toml") -> dict[str, HostSpec]:
    """The named hosts of a TOML file (see ``data/hosts/hosts.toml``); CPU and node sets are kernel lists."""
    hosts = {}
    for name, raw in tomllib.loads(path.read_text()).items():
        fields: dict[str, Any] = {"name": name, **raw}
        fields["kinds"] = tuple(CoreKind(**kind) for kind in raw.get("kinds", ()))
        fields["hugepages"] = {int(size): (nr, free) for size, (nr, free) in raw.get("hugepages", {}).items()}
        sets = ("offline", "memoryless_nodes", "cpuless_nodes", "isolated", "nohz_full")
        fields |= {k: parse_cpulist(v) for k, v in raw.items() if k in sets}
        fields["distances"] = tuple(map(tuple, raw.get("distances", ())))
        hosts[name] = HostSpec(**fields)
    return hosts


NAMED_HOSTS: dict[str, HostSpec] = load_hosts()


def capture(src_root: Path, dst_root: Path) -> list[str]:
    """Copy the kinds of file ``write_sysfs`` writes from a real root (``/``) to ``dst_root``; returns them.
    Unreadable files are skipped; of the symlinks only ``nodeN/cpuM`` are kept (they point inside the copy).
    ``proc/cmdline`` loses what follows `` -- ``: those arguments go to init, not to the kernel."""
    specs = [spec for spec in NAMED_HOSTS.values() if not spec.generated_only]
    patterns = {re.sub(r"\d+", "[0-9]*", path) for spec in specs for path in sysfs_files(spec)[0]}
    links = sorted(p for p in src_root.glob(f"{_NODE}/node[0-9]*/cpu[0-9]*") if p.is_symlink())
    copied = []
    for src in sorted({path for pattern in patterns for path in src_root.glob(pattern)}) + links:
        rel, dst = src.relative_to(src_root).as_posix(), dst_root / src.relative_to(src_root)
        try:
            data = b"" if src.is_symlink() else src.read_bytes()  # read, never copy: sysfs files claim 4K
        except OSError:
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            dst.symlink_to(os.readlink(src))
        else:
            dst.write_bytes(data.split(b" -- ")[0].rstrip() + b"\n" if rel == "proc/cmdline" else data)
        copied.append(rel)
    return copied


def main(argv: Sequence[str] | None = None) -> int:
    """``sysfsgen.py OUTDIR [--capture]``: write every committed host into OUTDIR (and this machine)."""
    args = sys.argv[1:] if argv is None else list(argv)
    paths = [a for a in args if a != "--capture"]
    if len(paths) != 1 or paths[0].startswith("-"):
        sys.exit(main.__doc__)
    out = Path(paths[0])
    for spec in (spec for spec in NAMED_HOSTS.values() if not spec.generated_only):
        shutil.rmtree(out / spec.name, ignore_errors=True)
        write_sysfs(spec, out / spec.name)
        (out / f"{spec.name}.capabilities.xml").write_text(write_capabilities(spec))
    if "--capture" in args:
        shutil.rmtree(out / "this-machine", ignore_errors=True)
        capture(Path("/"), out / "this-machine")
        virsh = ["virsh", "capabilities"]  # as root: qemu:///system
        done = subprocess.run(virsh, capture_output=True, text=True, timeout=60, check=False)
        if done.returncode == 0:
            (out / "this-machine.capabilities.xml").write_text(done.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
