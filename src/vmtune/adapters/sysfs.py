"""Read host topology from a sysfs/procfs root (``/`` or a captured tree such as a snapshot or a test host).

Reads each file at most once and turns it into :class:`~vmtune.core.topobuild.CpuRecord` /
:class:`~vmtune.core.topobuild.NodeRecord`; every topology rule lives in ``core/topobuild.py``.
Quirks handled here (all seen in real dumps, see ../shared/corpora/sysfs/INDEX.md):

- files padded with NUL bytes, masks sized for NR_CPUS up to 4096+ bits;
- old kernels without ``*_list`` files (hex masks only) and new ones with only ``core_cpus``/``package_cpus``;
- ``cpu/online`` listing more CPUs than there are ``cpuN`` directories (libvirt-with-clusters), CPU0 offline,
  offline CPUs without ``topology/``, no ``cpu/online`` at all (per-CPU ``online`` files, cpu0 has none);
- NUMA membership from ``cpulist``, ``cpumap`` or only ``nodeN/cpuM`` links; sparse node ids with positional
  ``distance`` rows; node0 missing; no ``node/`` directory at all (one node 0, memory from /proc/meminfo).

Speed matters on 900+ CPU hosts: directories are listed once instead of probing files with exceptions,
``*_list`` files are preferred (cheaper to parse than masks), and per-cache metadata (size, id) is read
once per distinct sharing group, not once per CPU.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from vmtune.adapters.procinfo import cpuinfo_identity, meminfo_kib
from vmtune.core.topobuild import CacheRecord, CpuRecord, NodeRecord, build_host, distances_from_row
from vmtune.core.topology import Host, HugePages
from vmtune.cpuset import CpuSet
from vmtune.errors import InputError

__all__ = ["read_sysfs"]

_CPU_DIR = re.compile(r"cpu(\d+)$")
_NODE_DIR = re.compile(r"node(\d+)$")
_INDEX_DIR = re.compile(r"index(\d+)$")
_HUGE_DIR = re.compile(r"hugepages-(\d+)kB$")
_SIBLING_FILES = ("core_cpus_list", "thread_siblings_list", "core_cpus", "thread_siblings")
_PACKAGE_FILES = ("package_cpus_list", "core_siblings_list", "package_cpus", "core_siblings")
_MAX_FILE = 1 << 20  # sysfs attributes are <= PAGE_SIZE; proc files we read are small too


def read_sysfs(root: Path) -> Host:
    """Read the topology under ``root`` (``root/sys/devices/system/{cpu,node}``, ``root/proc``)."""
    if not root.is_dir():
        raise InputError(f"{root}: no such directory (expected a sysfs root such as /)")
    cpu_base = root / "sys" / "devices" / "system" / "cpu"
    if not cpu_base.is_dir():
        raise InputError(f"{cpu_base}: not found; {root} is not a sysfs root")
    return _Reader(root).read()


class _Reader:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.cpu_base = str(root / "sys" / "devices" / "system" / "cpu")
        self.node_base = str(root / "sys" / "devices" / "system" / "node")
        self.warnings: list[str] = []
        # (index dir:level, shared bits) -> (size KiB, cache id): read once per sharing group
        self._meta: dict[tuple[str, int], tuple[int | None, int | None]] = {}
        self._leader: dict[int, CpuRecord] = {}  # CPU -> the already-read SMT sibling it shares a core with
        self._topo_names: set[str] | None = None  # file names in the first cpuN/topology

    # -- file helpers -----------------------------------------------------------------------------
    def text(self, path: str) -> str | None:
        """File contents without NUL padding and surrounding whitespace; None when it doesn't exist."""
        try:
            fd = os.open(path, os.O_RDONLY)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as err:
            raise InputError(f"{path}: cannot read: {err.strerror or err}") from None
        try:
            # sysfs attributes fit in one page; a small first read avoids allocating a huge buffer per
            # file (that alone cost 20 us/file), the loop covers /proc files of any size.
            data = os.read(fd, 8192)
            if len(data) == 8192:
                while len(data) < _MAX_FILE and (more := os.read(fd, 65536)):
                    data += more
        except OSError as err:
            raise InputError(f"{path}: cannot read: {err.strerror or err}") from None
        finally:
            os.close(fd)
        try:
            return data.replace(b"\x00", b"").strip().decode("utf-8")
        except UnicodeDecodeError:
            raise InputError(f"{path}: not text") from None

    def listdir(self, path: str) -> list[str]:
        try:
            return os.listdir(path)
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as err:
            raise InputError(f"{path}: cannot list: {err.strerror or err}") from None

    def integer(self, path: str) -> int | None:
        raw = self.text(path)
        if raw is None:
            return None
        try:
            return int(raw)
        except ValueError:
            raise InputError(f"{path}: expected an integer, found {raw[:40]!r}") from None

    def cpulist(self, path: str) -> CpuSet | None:
        raw = self.text(path)
        return None if raw is None else CpuSet.parse(raw, what=path)

    def cpumask(self, path: str) -> CpuSet | None:
        raw = self.text(path)
        return None if raw is None else CpuSet.parse_mask(raw, what=path)

    def set_from(self, base: str, entries: set[str] | None, *names: str) -> CpuSet | None:
        """First of ``names`` that exists (``*_list`` names parse as lists, others as masks)."""
        for name in names:
            if entries is not None and name not in entries:
                continue
            path = f"{base}/{name}"
            value = self.cpulist(path) if name.endswith("list") else self.cpumask(path)
            if value is not None:
                return value
        return None

    # -- CPUs -------------------------------------------------------------------------------------
    def read(self) -> Host:
        base = self.cpu_base
        cpu_ids = sorted(int(m.group(1)) for e in self.listdir(base) if (m := _CPU_DIR.match(e)))
        if not cpu_ids:
            raise InputError(f"{base}: no cpuN directories")
        global_online = self.cpulist(f"{base}/online")
        records = [self._cpu(cpu, global_online) for cpu in cpu_ids]
        if global_online is not None and not any(r.online for r in records):
            raise InputError(f"{base}/online: lists none of the cpuN directories present")
        nodes, node_warn = self._nodes()
        self.warnings.extend(node_warn)
        proc = str(self.root / "proc")
        meminfo = meminfo_kib(self.text(f"{proc}/meminfo") or "")
        if not nodes:
            # No node/ directory (s390, small ARM, UP kernels): one node with everything, like hwloc.
            nodes = [
                NodeRecord(
                    id=0,
                    cpus=CpuSet(cpu_ids),
                    mem_total_kib=meminfo.get("MemTotal"),
                    mem_free_kib=meminfo.get("MemFree"),
                    hugepages=self._hugepages(str(self.root / "sys" / "kernel" / "mm" / "hugepages")),
                )
            ]
        vendor, model, arch_guess = cpuinfo_identity(self.text_head(f"{proc}/cpuinfo"))
        arch = self.text(f"{proc}/sys/kernel/arch") or arch_guess
        cmdline = self.text(f"{proc}/cmdline")
        return build_host(
            name=str(self.root),
            cpus=records,
            nodes=nodes,
            arch=arch,
            vendor=vendor,
            model=model,
            isolated=self.cpulist(f"{base}/isolated"),
            nohz_full=self._nohz(f"{base}/nohz_full"),
            cmdline=cmdline.replace("\x00", " ").strip() if cmdline else None,
            memory_total_kib=meminfo.get("MemTotal"),
            warnings=self.warnings,
        )

    def text_head(self, path: str) -> str:
        """The first 256 KiB of a file (a 900-CPU /proc/cpuinfo is megabytes; the vendor is at the top)."""
        try:
            with open(path, "rb") as fh:
                return fh.read(256 * 1024).decode("utf-8", "replace")
        except FileNotFoundError:
            return ""
        except OSError as err:
            raise InputError(f"{path}: cannot read: {err.strerror or err}") from None

    def _nohz(self, path: str) -> CpuSet | None:
        raw = self.text(path)
        # Kernels before 4.x print "(null)" when nohz_full= was not given.
        if raw is None or raw == "(null)":
            return None
        return CpuSet.parse(raw, what=path)

    def _cpu(self, cpu: int, global_online: CpuSet | None) -> CpuRecord:
        d = f"{self.cpu_base}/cpu{cpu}"
        leader = self._leader.get(cpu)
        if leader is not None and global_online is not None:
            # An SMT sibling of a CPU already read: the kernel derives thread siblings, package, die,
            # cluster, core_id and every cache from the same core, so reading them again only costs
            # time (this halves the reads on a 960-CPU SMT2 host).
            if cpu not in global_online:
                return CpuRecord(id=cpu, online=False, has_topology=False)
            return CpuRecord(
                id=cpu,
                package_id=leader.package_id,
                die_id=leader.die_id,
                cluster_id=leader.cluster_id,
                core_id=leader.core_id,
                siblings=leader.siblings,
                package_cpus=leader.package_cpus,
                capacity=leader.capacity,
                caches=leader.caches,
            )
        entries = set(self.listdir(d))
        if global_online is not None:
            online = cpu in global_online
        elif "online" in entries:
            online = self._online_flag(f"{d}/online")
        else:
            online = True  # cpu0 on x86 has no online file: it cannot be hot-unplugged
        if not online:
            return CpuRecord(id=cpu, online=False, has_topology=False)
        capacity = self.integer(f"{d}/cpu_capacity") if "cpu_capacity" in entries else None
        caches = self._caches(f"{d}/cache") if "cache" in entries else ()
        if "topology" not in entries:
            return CpuRecord(id=cpu, has_topology=False, capacity=capacity, caches=caches)
        t = f"{d}/topology"
        # Every CPU of one kernel has the same topology file names: list the directory once.
        te = self._topo_names if self._topo_names is not None else set(self.listdir(t))
        siblings = self.set_from(t, te, *_SIBLING_FILES)
        if siblings is None and self._topo_names is not None and any(f in te for f in _SIBLING_FILES):
            te = set(self.listdir(t))  # this CPU differs from the first one: look properly
            siblings = self.set_from(t, te, *_SIBLING_FILES)
        self._topo_names = self._topo_names or te
        package_cpus = self.set_from(t, te, *_PACKAGE_FILES)
        rec = CpuRecord(
            id=cpu,
            package_id=self.integer(f"{t}/physical_package_id") if "physical_package_id" in te else None,
            die_id=self.integer(f"{t}/die_id") if "die_id" in te else None,
            cluster_id=self.integer(f"{t}/cluster_id") if "cluster_id" in te else None,
            core_id=self.integer(f"{t}/core_id") if "core_id" in te else None,
            siblings=siblings,
            package_cpus=package_cpus,
            capacity=capacity,
            caches=caches,
        )
        if siblings is not None:
            for other in siblings:
                if other > cpu:
                    self._leader.setdefault(other, rec)
        return rec

    def _online_flag(self, path: str) -> bool:
        raw = self.text(path)
        # An empty online file (hwloc-128ia64 dump) says nothing: treat the CPU as online, like hwloc.
        if raw in (None, "", "1"):
            return True
        if raw == "0":
            return False
        raise InputError(f"{path}: expected 0 or 1, found {raw[:40]!r}")

    def _caches(self, cache_dir: str) -> tuple[CacheRecord, ...]:
        out: list[CacheRecord] = []
        for entry in self.listdir(cache_dir):
            if not _INDEX_DIR.match(entry):
                continue
            idx = f"{cache_dir}/{entry}"
            level = self.integer(f"{idx}/level")
            if level not in (2, 3):
                continue
            # Only L2 can be split (Itanium's L2I/L2D); no CPU has an instruction-only L3, so the
            # type is read where it can matter (one read less per CPU on big hosts).
            if level == 2 and self.text(f"{idx}/type") == "Instruction":
                continue
            # The mask first, as hwloc does: the hwloc-64amd64-4s2n4ca2co dump (Bulldozer, L2 shared
            # by the two cores of a module) has shared_cpu_list "6" where shared_cpu_map says 6-7.
            # The list is the fallback for trees that only have lists (libvirt test data).
            shared = self.cpumask(f"{idx}/shared_cpu_map")
            if shared is None:
                shared = self.cpulist(f"{idx}/shared_cpu_list")
            if shared is None:
                continue
            key = (f"{entry}:{level}", shared.bits)
            meta = self._meta.get(key)
            if meta is None:
                meta = self._meta[key] = (_size_kib(self.text(f"{idx}/size"), f"{idx}/size"),
                                          self.integer(f"{idx}/id"))  # fmt: skip
            out.append(CacheRecord(level=level, cpus=shared, size_kib=meta[0], cache_id=meta[1]))
        return tuple(out)

    # -- NUMA nodes ---------------------------------------------------------------------------------
    def _nodes(self) -> tuple[list[NodeRecord], list[str]]:
        base = self.node_base
        entries = self.listdir(base)
        ids = sorted(int(m.group(1)) for e in entries if (m := _NODE_DIR.match(e)))
        if not ids:
            return [], []
        warn: list[str] = []
        online = self.cpulist(f"{base}/online")
        possible = self.cpulist(f"{base}/possible")
        # Distance rows have one column per online node in id order; see distances_from_row.
        candidates = [list(s) for s in (online, possible) if s is not None]
        candidates.insert(1 if online is not None else 0, ids)
        nodes: list[NodeRecord] = []
        for nid in ids:
            d = f"{base}/node{nid}"
            ne = set(self.listdir(d))
            cpus = self.set_from(d, ne, "cpulist", "cpumap")
            if cpus is None:
                # libvirt-trimmed dumps (and some old kernels) only have nodeN/cpuM links
                cpus = CpuSet(int(m.group(1)) for e in ne if (m := _CPU_DIR.match(e)))
            mem = meminfo_kib(self.text(f"{d}/meminfo") or "") if "meminfo" in ne else {}
            distances: tuple[tuple[int, int], ...] = ()
            if "distance" in ne:
                path = f"{d}/distance"
                raw = self.text(path) or ""
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
                    hugepages=self._hugepages(f"{d}/hugepages") if "hugepages" in ne else (),
                    distances=distances,
                )
            )
        return nodes, warn

    def _hugepages(self, base: str) -> tuple[HugePages, ...]:
        out = []
        for entry in self.listdir(base):
            m = _HUGE_DIR.match(entry)
            if not m:
                continue
            total = self.integer(f"{base}/{entry}/nr_hugepages")
            free = self.integer(f"{base}/{entry}/free_hugepages")
            out.append(HugePages(size_kib=int(m.group(1)), total=total or 0, free=free or 0))
        return tuple(sorted(out, key=lambda h: h.size_kib))


def _size_kib(raw: str | None, path: str) -> int | None:
    """Cache ``size`` is ``32K`` (kernel prints %uK); tolerate M/G and bare numbers from other tools."""
    if not raw:
        return None
    num, unit = raw[:-1], raw[-1].upper()
    if unit.isdigit():
        num, unit = raw, "K"
    scale = {"K": 1, "M": 1024, "G": 1024 * 1024}.get(unit)
    if scale is None or not num.isdigit():
        raise InputError(f"{path}: expected a size like 32K, found {raw[:40]!r}")
    return int(num) * scale
