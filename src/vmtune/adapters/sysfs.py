"""Read host topology from a sysfs/procfs root (``/`` or a captured tree such as a snapshot or a test host).

Reads each file at most once and turns it into :class:`~vmtune.core.topology.build.CpuRecord` /
:class:`~vmtune.core.topology.build.NodeRecord`; every topology rule lives in ``core/topobuild.py``.
Quirks handled here (all seen in real dumps, see ../shared/corpora/sysfs/INDEX.md):

- files padded with NUL bytes, masks sized for NR_CPUS up to 4096+ bits;
- old kernels without ``*_list`` files (hex masks only) and new ones with only ``core_cpus``/``package_cpus``;
- ``cpu/online`` listing more CPUs than there are ``cpuN`` directories (libvirt-with-clusters), CPU0 offline,
  offline CPUs without ``topology/``, no ``cpu/online`` at all (per-CPU ``online`` files, cpu0 has none);
- no ``node/`` directory at all (one node 0, memory from /proc/meminfo); the nodes themselves are read by
  ``sysfsnode``, the file primitives live in ``sysfsio``, /proc parsing in ``procinfo``.

Speed matters on 900+ CPU hosts (``bench/host_render.py``): a CPU is read only as far as earlier CPUs'
masks leave it unknown (see ``_Reader``), ``*_list`` files are preferred (cheaper to parse than masks), and
per-cache metadata (size, id) is read once per distinct sharing group, not once per CPU.
"""

from __future__ import annotations

import re
from pathlib import Path

from vmtune.adapters.procinfo import cpuinfo_identity, meminfo_kib
from vmtune.adapters.sysfsio import FileTree, SysfsFiles
from vmtune.adapters.sysfsnode import read_hugepages, read_nodes
from vmtune.core.topology.build import CacheRecord, CpuRecord, NodeRecord, build_host
from vmtune.core.topology.model import CACHE_LEVELS, Host
from vmtune.cpuset import CpuSet
from vmtune.errors import InputError
from vmtune.units import parse_size_kib

__all__ = ["PMU_DIRS", "cmdline_cpus", "read_sysfs"]

_CPU_DIR = re.compile(r"cpu(\d+)$")
_INDEX_DIR = re.compile(r"index(\d+)$")
_SIBLING_FILES = ("core_cpus_list", "thread_siblings_list", "core_cpus", "thread_siblings")
_DIE_FILES = ("die_cpus_list", "die_cpus")
PMU_DIRS = ("cpu_core", "cpu_atom")
"""``/sys/devices/<pmu>/cpus`` of Intel hybrid's P-core and E-core PMUs (read here, kept by snapshots)."""
_PACKAGE_FILES = ("package_cpus_list", "core_siblings_list", "package_cpus", "core_siblings")


class _Unknown:
    """Not known yet (None is a value: the file does not exist)."""


_UNKNOWN = _Unknown()


def read_sysfs(root: Path, *, exhaustive: bool = False, tree: FileTree | None = None) -> Host:
    """Read the topology under ``root`` (``root/sys/devices/system/{cpu,node}``, ``root/proc``).

    By default a CPU whose core, package or cache an earlier CPU's mask already describes is not read
    again (see ``_Reader``). ``exhaustive=True`` reads every CPU's own files: several times slower on big
    hosts, the reference the tests hold the shortcuts to. ``tree``: the files below ``root`` are held in
    memory (a snapshot archive named ``root``), not on disk.
    """
    if tree is None and not root.is_dir():
        raise InputError(f"{root}: no such directory (expected a sysfs root such as /)")
    cpu_base = root / "sys" / "devices" / "system" / "cpu"
    if not (cpu_base.is_dir() if tree is None else str(cpu_base) in tree.dirs):
        raise InputError(f"{cpu_base}: not found; {root} is not a sysfs root")
    reader = _Reader(root, shortcuts=not exhaustive, tree=tree)
    reader.anchor(reader.cpu_base)
    try:
        return reader.read()
    finally:
        reader.close()


class _Reader(SysfsFiles):
    """One read of one root. Reading ~30,000 small files dominated ``vmtune host`` on 960 CPUs, so with
    ``shortcuts`` a CPU is read only as far as earlier CPUs' masks leave it unknown:

    - an SMT sibling of a CPU already read copies that CPU's record (``_leader``);
    - a CPU in an earlier CPU's package mask reporting the same package id takes that mask (``_package``);
    - a CPU in an earlier CPU's ``shared_cpu_map`` takes that cache at that index (``_shared``): the
      first CPU's mask defines the group, as in hwloc's look_sysfscpu ("first cpu in this cache, add the
      cache");
    - index dirs' levels/types are read once per distinct cache/ listing and capacity (``_layout``);
    - after the first CPU no cpuN/ or topology/ directory is listed (``_cpu_fast``).
    """

    def __init__(self, root: Path, *, shortcuts: bool = True, tree: FileTree | None = None) -> None:
        super().__init__(tree)
        self.root = root
        self.shortcuts = shortcuts
        self.cpu_base = str(root / "sys" / "devices" / "system" / "cpu")
        self.node_base = str(root / "sys" / "devices" / "system" / "node")
        self.warnings: list[str] = []
        # (index dir:level, shared bits) -> (size KiB, cache id): read once per sharing group
        self._meta: dict[tuple[str, int], tuple[int | None, int | None]] = {}
        # What an earlier CPU's masks already say about a later one (see _topology and _cache):
        self._leader: dict[int, CpuRecord] = {}  # CPU -> the already-read SMT sibling it shares a core with
        # CPU -> (package id, mask, die id when the die is the package) as the package's first CPU saw it
        self._package: dict[int, tuple[int | None, CpuSet, int | _Unknown | None]] = {}
        self._shared: dict[tuple[int, str], CacheRecord] = {}  # (CPU, indexK) -> the cache it shares
        # (cache/ listing, cpu_capacity) -> (indexK, level) of its data/unified caches of the tracked levels
        self._layouts: dict[tuple[frozenset[str], int | None], tuple[tuple[str, int], ...]] = {}
        # (cpu_capacity, n, layout) of the first CPU whose cache/ holds exactly index0..index{n-1}
        self._cache_tmpl: tuple[int | None, int, tuple[tuple[str, int], ...]] | None = None
        self._topo_names: set[str] | None = None  # file names in the first cpuN/topology
        self._fast = False  # the first online CPU had topology/ with a siblings file: see _cpu_fast
        self._capacity = False  # the first online CPU has cpu_capacity

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
        nodes, node_warn = read_nodes(self, self.node_base)
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
                    hugepages=read_hugepages(self, str(self.root / "sys" / "kernel" / "mm" / "hugepages")),
                )
            ]
        vendor, model, arch_guess = cpuinfo_identity(self.text_head(f"{proc}/cpuinfo"))
        arch = self.text(f"{proc}/sys/kernel/arch") or arch_guess
        cmdline = self.text(f"{proc}/cmdline")
        args = cmdline.replace("\x00", " ").strip() if cmdline else None
        isolated = self.cpulist(f"{base}/isolated")
        nohz = self._nohz(f"{base}/nohz_full")
        return build_host(
            name=str(self.root),
            cpus=records,
            nodes=nodes,
            arch=arch,
            vendor=vendor,
            model=model,
            isolated=isolated if isolated is not None else cmdline_cpus(args, "isolcpus"),
            nohz_full=nohz if nohz is not None else cmdline_cpus(args, "nohz_full"),
            cmdline=args,
            memory_total_kib=meminfo.get("MemTotal"),
            warnings=self.warnings,
            pmu_kinds=self._pmu_kinds(),
        )

    def _pmu_kinds(self) -> tuple[CpuSet, CpuSet] | None:
        """The CPUs of Intel hybrid's two core PMUs (P-cores, E-cores); None where the kernel has no such
        PMU (every other host, and kernels before 5.16)."""
        devices = self.root / "sys" / "devices"
        big, little = (self.cpulist(str(devices / pmu / "cpus")) for pmu in PMU_DIRS)
        return (big, little) if big is not None and little is not None else None

    def _nohz(self, path: str) -> CpuSet | None:
        raw = self.text(path)
        # Kernels before 4.x print "(null)" when nohz_full= was not given.
        if raw is None or raw == "(null)":
            return None
        return CpuSet.parse(raw, what=path)

    def _cpu(self, cpu: int, global_online: CpuSet | None) -> CpuRecord:
        d = f"{self.cpu_base}/cpu{cpu}"
        if global_online is None:
            return self._cpu_full(cpu, d, None)  # per-CPU online files: list every directory
        if cpu not in global_online:
            return CpuRecord(id=cpu, online=False, has_topology=False)
        leader = self._leader.get(cpu)
        if leader is not None:
            # An SMT sibling of a CPU already read: the kernel derives thread siblings, package, die,
            # cluster, core_id and every cache from the same core, so reading them again only costs
            # time (this halves the reads on a 960-CPU SMT2 host).
            return CpuRecord(
                id=cpu,
                package_id=leader.package_id,
                die_id=leader.die_id,
                cluster_id=leader.cluster_id,
                core_id=leader.core_id,
                book_id=leader.book_id,
                drawer_id=leader.drawer_id,
                siblings=leader.siblings,
                package_cpus=leader.package_cpus,
                capacity=leader.capacity,
                caches=leader.caches,
            )
        return (self._cpu_fast(cpu, d) if self._fast else None) or self._cpu_full(cpu, d, global_online)

    def _cpu_full(self, cpu: int, d: str, global_online: CpuSet | None) -> CpuRecord:
        """Read a CPU after listing its directory (the first CPU, and any CPU unlike it)."""
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
        cache_dir = f"{d}/cache" if "cache" in entries else None
        if "topology" not in entries:
            caches = self._caches(cpu, cache_dir, capacity, None) if cache_dir else ()
            return CpuRecord(id=cpu, has_topology=False, capacity=capacity, caches=caches)
        t = f"{d}/topology"
        # Every CPU of one kernel has the same topology file names: list the directory once.
        te = self._topo_names if self._topo_names is not None else set(self.listdir(t))
        siblings = self.set_from(t, te, *_SIBLING_FILES)
        if siblings is None and self._topo_names is not None and any(f in te for f in _SIBLING_FILES):
            te = set(self.listdir(t))  # this CPU differs from the first one: look properly
            siblings = self.set_from(t, te, *_SIBLING_FILES)
        if self._topo_names is None:
            self._topo_names = te
            self._fast = siblings is not None and self.shortcuts
            self._capacity = "cpu_capacity" in entries
        return self._record(cpu, t, te, siblings=siblings, capacity=capacity, cache_dir=cache_dir)

    def _cpu_fast(self, cpu: int, d: str) -> CpuRecord | None:
        """Read an online CPU without listing its directories: open the files the first CPU had.

        None when this CPU is not like the first one (its siblings file is missing: no topology/, other
        file names), and it is then read in full. cache/ is listed on every CPU: asymmetric hosts differ
        there (hwloc-8em64t-2s4c-asymcaches lacks index dirs on some). cpu_capacity is read when the first
        CPU has it: the kernel creates it for every possible CPU or none (drivers/base/arch_topology.c), and
        probing a missing file costs as much as reading one.
        """
        te = self._topo_names
        t = f"{d}/topology"
        siblings = self.set_from(t, te, *_SIBLING_FILES)
        if siblings is None or te is None:
            return None
        capacity = self.integer(f"{d}/cpu_capacity") if self._capacity else None
        return self._record(
            cpu, t, te, siblings=siblings, capacity=capacity, cache_dir=f"{d}/cache", fast=True
        )

    def _record(
        self,
        cpu: int,
        t: str,
        te: set[str],
        *,
        siblings: CpuSet | None,
        capacity: int | None,
        cache_dir: str | None,
        fast: bool = False,
    ) -> CpuRecord:
        """The rest of a CPU once its siblings are known: package, ids, caches; then vouch for siblings."""
        package_id = self.integer(f"{t}/physical_package_id") if "physical_package_id" in te else None
        known = self._package.get(cpu)
        package_cpus: CpuSet | None
        die_id: int | _Unknown | None = _UNKNOWN
        if known is not None and known[0] == package_id:
            package_cpus, die_id = known[1], known[2]
        else:
            package_cpus = self.set_from(t, te, *_PACKAGE_FILES)
            if package_cpus is not None:
                # The kernel builds the package mask from equal physical_package_id (x86 match_pkg,
                # arm64 update_siblings_masks) and sets it on every member, so the later CPUs of this
                # mask that report the same id have this same mask: one mask read per package. (The id
                # is still read per core: libvirt-high-ids is hand-edited, cpu8 says package 8-15 but
                # cpu12 has another id and mask 12-15; a differing id makes the CPU read its own mask.)
                # A die mask equal to the package mask (one die per package, x86 match_die) gives
                # the whole package this CPU's die_id.
                die_id = self.integer(f"{t}/die_id") if "die_id" in te else None
                die_cpus = self.set_from(t, te, *_DIE_FILES) if "die_id" in te else None
                shared_die = die_id if die_cpus == package_cpus else _UNKNOWN
                for other in self._later(package_cpus, cpu):
                    self._package.setdefault(other, (package_id, package_cpus, shared_die))
        if isinstance(die_id, _Unknown):
            die_id = self.integer(f"{t}/die_id") if "die_id" in te else None
        caches = self._caches(cpu, cache_dir, capacity, siblings, fast=fast) if cache_dir else ()
        rec = CpuRecord(
            id=cpu,
            package_id=package_id,
            die_id=die_id,
            cluster_id=self.integer(f"{t}/cluster_id") if "cluster_id" in te else None,
            core_id=self.integer(f"{t}/core_id") if "core_id" in te else None,
            book_id=self.integer(f"{t}/book_id") if "book_id" in te else None,
            drawer_id=self.integer(f"{t}/drawer_id") if "drawer_id" in te else None,
            siblings=siblings,
            package_cpus=package_cpus,
            capacity=capacity,
            caches=caches,
        )
        if siblings is not None:
            for other in self._later(siblings, cpu):
                self._leader.setdefault(other, rec)
        return rec

    def _later(self, cpus: CpuSet, cpu: int) -> list[int]:
        """The CPUs of ``cpus`` after ``cpu`` (those a mask read on ``cpu`` can vouch for)."""
        if not self.shortcuts:
            return []
        out: list[int] = []
        for first, last in cpus.ranges():
            if last > cpu:
                out.extend(range(max(first, cpu + 1), last + 1))
        return out

    def _online_flag(self, path: str) -> bool:
        raw = self.text(path)
        # An empty online file (hwloc-128ia64 dump) says nothing: treat the CPU as online, like hwloc.
        if raw in (None, "", "1"):
            return True
        if raw == "0":
            return False
        raise InputError(f"{path}: expected 0 or 1, found {raw[:40]!r}")

    def _caches(
        self, cpu: int, cache_dir: str, capacity: int | None, siblings: CpuSet | None, *, fast: bool = False
    ) -> tuple[CacheRecord, ...]:
        tmpl = self._cache_tmpl
        if (
            fast
            and tmpl is not None
            and tmpl[0] == capacity
            and not self.exists(f"{cache_dir}/index{tmpl[1]}")
        ):
            # Like the first CPU: the kernel numbers index dirs 0..n-1 without gaps, so no index{n}
            # means no extra cache; a missing one among the L2/L3 of the layout reads as absent below,
            # and missing L1 dirs change nothing. One failed lookup instead of listing cache/.
            layout = tmpl[2]
        else:
            listing = frozenset(self.listdir(cache_dir))
            if not listing:
                return ()
            layout = self._layouts.get((listing, capacity)) or ()
            if (listing, capacity) not in self._layouts:
                names = sorted((e for e in listing if _INDEX_DIR.match(e)), key=_index_no)
                layout = self._layout(cache_dir, names)
                if self.shortcuts:
                    self._layouts[(listing, capacity)] = layout
                    if tmpl is None and names == [f"index{i}" for i in range(len(names))]:
                        self._cache_tmpl = (capacity, len(names), layout)
        out: list[CacheRecord] = []
        for entry, level in layout:
            rec = self._shared.get((cpu, entry))
            if rec is None or rec.level != level:
                rec = self._cache(cpu, f"{cache_dir}/{entry}", entry, level, siblings)
            if rec is not None:
                out.append(rec)
        return tuple(out)

    def _layout(self, cache_dir: str, names: list[str]) -> tuple[tuple[str, int], ...]:
        """(indexK, level) of the data/unified caches of the ``CACHE_LEVELS`` among ``names``.

        Read for the first CPU with these index dirs and this cpu_capacity, then reused: the kernel
        numbers a CPU's cache leaves by level (L1d, L1i, L2, L3 from CPUID leaf 4 / 0x8000001d on x86,
        cacheinfo_populate on arm64) the same way on every CPU of one kind, and CPUs of another kind
        (big.LITTLE, asymmetric dumps) differ in their index dirs or capacity. Saves ~5 reads per CPU.
        """
        out: list[tuple[str, int]] = []
        for entry in names:
            idx = f"{cache_dir}/{entry}"
            level = self.integer(f"{idx}/level")
            if level not in CACHE_LEVELS:
                continue
            # A split level (L1, Itanium's L2I/L2D) has an instruction side that is no sharing group of data.
            if self.text(f"{idx}/type") == "Instruction":
                continue
            out.append((entry, level))
        return tuple(out)

    def _cache(
        self, cpu: int, idx: str, entry: str, level: int, siblings: CpuSet | None
    ) -> CacheRecord | None:
        # The mask first, as hwloc does: the hwloc-64amd64-4s2n4ca2co dump (Bulldozer, L2 shared
        # by the two cores of a module) has shared_cpu_list "6" where shared_cpu_map says 6-7.
        # The list is the fallback for trees that only have lists (libvirt test data).
        shared = self.cpumask(f"{idx}/shared_cpu_map")
        if shared is None:
            shared = self.cpulist(f"{idx}/shared_cpu_list")
        if shared is None:
            return None
        key = (f"{entry}:{level}", shared.bits)
        meta = self._meta.get(key)
        if meta is None:
            meta = self._meta[key] = (_size_kib(self.text(f"{idx}/size"), f"{idx}/size"),
                                      self.integer(f"{idx}/id"))  # fmt: skip
        rec = CacheRecord(level=level, cpus=shared, size_kib=meta[0], cache_id=meta[1])
        # cacheinfo sets shared_cpu_map on every CPU sharing the leaf (cache_shared_cpu_map_setup), so
        # the later CPUs of the map have this same cache at this index: read it once per group. (SMT
        # siblings copy this CPU's whole record anyway.)
        others = shared if siblings is None else CpuSet.from_bits(shared.bits & ~siblings.bits)
        for other in self._later(others, cpu):
            self._shared.setdefault((other, entry), rec)
        return rec


def _index_no(entry: str) -> int:
    return int(entry[5:])  # "index12" -> 12: hwloc and the kernel count index dirs in this order


def _size_kib(raw: str | None, path: str) -> int | None:
    """Cache ``size`` is ``32K`` (kernel prints %uK); tolerate M/G and bare numbers from other tools."""
    if not raw:
        return None
    try:
        return parse_size_kib(raw)
    except ValueError:
        raise InputError(f"{path}: expected a size like 32K, found {raw[:40]!r}") from None


def cmdline_cpus(cmdline: str | None, key: str) -> CpuSet | None:
    """The CPU list of ``key=`` on the kernel command line (None: not there or not a CPU list): where an
    older kernel or a copied tree has no ``isolated``/``nohz_full`` file. ``isolcpus`` may lead with
    flags (``isolcpus=managed_irq,domain,2-7``): the CPU list is what starts with a digit."""
    if not cmdline:
        return None
    value = next((arg.split("=", 1)[1] for arg in cmdline.split() if arg.startswith(f"{key}=")), None)
    if value is None:
        return None
    cpus = ",".join(part for part in value.split(",") if part[:1].isdigit())
    try:
        return CpuSet.parse(cpus, what=f"{key}=") if cpus else None
    except InputError:
        return None
